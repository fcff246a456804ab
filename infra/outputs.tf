# Everything the engine and the portal need; project_up.sh saves `terraform output -json`
# to .petrostream/aws-outputs.json. No output is secret.

output "region" {
  value = var.region
}

output "stream_name" {
  value = aws_kinesis_stream.ingest.name
}

output "firehose_name" {
  value = aws_kinesis_firehose_delivery_stream.delivery.name
}

output "raw_bucket" {
  value = aws_s3_bucket.data["raw"].bucket
}

output "curated_bucket" {
  value = aws_s3_bucket.data["curated"].bucket
}

output "athena_results_bucket" {
  value = aws_s3_bucket.data["athena-results"].bucket
}

output "model_bucket" {
  value = aws_s3_bucket.data["models"].bucket
}

output "log_bucket" {
  value = aws_s3_bucket.logs.bucket
}

output "glue_database" {
  value = aws_glue_catalog_database.main.name
}

output "athena_workgroup" {
  value = aws_athena_workgroup.main.name
}

output "lease_table" {
  value = aws_dynamodb_table.leases.name
}

output "ecs_cluster" {
  value = aws_ecs_cluster.main.name
}

output "consumer_service" {
  value = aws_ecs_service.consumer.name
}

output "portal_service" {
  description = "Null unless enable_portal is true."
  value       = try(aws_ecs_service.portal[0].name, null)
}

output "producer_task_definition" {
  description = "Task definition family; RunTask with it starts the latest revision."
  value       = aws_ecs_task_definition.producer.family
}

output "consumer_task_definition_arn" {
  description = "The revision the consumer service should run; CI checks the service really does."
  value       = aws_ecs_task_definition.consumer.arn
}

output "portal_task_definition_arn" {
  description = "Null unless enable_portal is true."
  value       = try(aws_ecs_task_definition.portal[0].arn, null)
}

output "task_subnet_ids" {
  description = "Subnets a one-off producer task runs in (with a public address)."
  value       = aws_subnet.public[*].id
}

output "task_security_group_id" {
  description = "Security group of a one-off producer task."
  value       = aws_security_group.workers.id
}

output "ecr_repository_url" {
  value = aws_ecr_repository.app.repository_url
}

output "portal_url" {
  description = "Null unless enable_portal is true; then reachable from allowed_cidrs only."
  value       = var.enable_portal ? "https://${local.portal_host}" : null
}

output "container_environment" {
  description = "The PETROSTREAM_* configuration every container receives, for running the engine or portal elsewhere."
  value       = local.container_env
}
