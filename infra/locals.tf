# Names the engine relies on, and the configuration every container receives.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  prefix     = var.name_prefix

  stream_name     = "${local.prefix}-ingest"
  firehose_name   = "${local.prefix}-delivery"
  glue_database   = replace(local.prefix, "-", "_")
  lease_table     = "${local.prefix}-leases"
  cluster_name    = local.prefix
  consumer_name   = "${local.prefix}-consumer"
  portal_name     = "${local.prefix}-portal"
  producer_family = "${local.prefix}-producer"
  bi_views_family = "${local.prefix}-bi-views"

  # Bucket names carry the account id so the same prefix works in any account.
  data_buckets = {
    raw            = "${local.prefix}-raw-${local.account_id}"
    curated        = "${local.prefix}-curated-${local.account_id}"
    athena-results = "${local.prefix}-athena-results-${local.account_id}"
    models         = "${local.prefix}-models-${local.account_id}"
  }
  log_bucket = "${local.prefix}-logs-${local.account_id}"

  # Every log group lives under one path so the leftover check finds them with one prefix.
  log_group_prefix = "/${local.prefix}"

  # The first fargate_on_demand_base tasks of a service run on on-demand FARGATE (Spot has no
  # fallback when its capacity is short), the rest on FARGATE_SPOT by weight. ECS allows a base
  # on one provider of a strategy only: Spot's stays 0.
  capacity_strategy = [
    { provider = "FARGATE_SPOT", weight = var.fargate_spot_weight, base = 0 },
    { provider = "FARGATE", weight = var.fargate_on_demand_weight, base = var.fargate_on_demand_base },
  ]

  container_env = {
    PETROSTREAM_BACKEND                  = "aws"
    AWS_REGION                           = var.region
    PETROSTREAM_STREAM_NAME              = local.stream_name
    PETROSTREAM_RAW_BUCKET               = local.data_buckets["raw"]
    PETROSTREAM_CURATED_BUCKET           = local.data_buckets["curated"]
    PETROSTREAM_ATHENA_RESULTS_BUCKET    = local.data_buckets["athena-results"]
    PETROSTREAM_MODEL_BUCKET             = local.data_buckets["models"]
    PETROSTREAM_GLUE_DATABASE            = local.glue_database
    PETROSTREAM_ATHENA_WORKGROUP         = local.prefix
    PETROSTREAM_LEASE_TABLE              = local.lease_table
    PETROSTREAM_ECS_CLUSTER              = local.cluster_name
    PETROSTREAM_CONSUMER_SERVICE         = local.consumer_name
    PETROSTREAM_PRODUCER_TASK_DEFINITION = local.producer_family
    PETROSTREAM_BATCH_SECONDS            = tostring(var.consumer_batch_seconds)
    PETROSTREAM_MODEL_KEY                = "kms:${local.model_signing_alias}"
  }

  # The consumer's health endpoint (engine/health.py): the port its health check probes, and
  # how long the consume loop may go without completing an iteration before it reports 503.
  consumer_health_env = {
    PETROSTREAM_HEALTH_PORT          = "8080"
    PETROSTREAM_HEALTH_STALE_SECONDS = tostring(var.consumer_health_stale_seconds)
  }
}
