# One role per job, each allowed only what that job does, on this project's resources only.
# The few actions AWS cannot scope to a resource (ECR log-in, metric reads, auto-scaling
# descriptions) are listed by name; no policy grants a wildcard action.

locals {
  key_arn            = aws_kms_key.main.arn
  bucket_arns        = { for key, bucket in aws_s3_bucket.data : key => bucket.arn }
  glue_catalog_arn   = "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog"
  glue_database_arn  = "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${local.glue_database}"
  glue_tables_arn    = "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${local.glue_database}/*"
  glue_resource_arns = [local.glue_catalog_arn, local.glue_database_arn, local.glue_tables_arn]
  # Every process that opens the aws backend first makes sure the lake tables exist.
  glue_ensure_tables      = ["glue:CreateTable", "glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]
  consumer_scaling_target = "arn:${local.partition}:application-autoscaling:${var.region}:${local.account_id}:scalable-target/*"
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Services other than ECS that assume a project role (Firehose, VPC flow logs, EventBridge Scheduler).
data "aws_iam_policy_document" "service_assume" {
  for_each = toset(["firehose", "scheduler", "vpc-flow-logs"])

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- Execution role: what ECS itself needs to start any task of the project. ---

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-task-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.app.arn]
  }
  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.tasks : "${group.arn}:*"]
  }
  statement {
    sid       = "DecryptImageLayers"
    actions   = ["kms:Decrypt"]
    resources = [local.key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- Consumer: read the stream, hold leases, write the lake, read the model. ---

resource "aws_iam_role" "consumer" {
  name               = "${local.consumer_name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "consumer" {
  statement {
    sid       = "ReadStream"
    actions   = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.ingest.arn]
  }
  statement {
    sid = "LeasesAndCheckpoints"
    actions = [
      "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
      "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.leases.arn]
  }
  statement {
    sid       = "ListLakeAndModels"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [local.bucket_arns["curated"], local.bucket_arns["models"]]
  }
  statement {
    sid       = "WriteLake"
    actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    resources = ["${local.bucket_arns["curated"]}/*"]
  }
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["models"]}/*"]
  }
  statement {
    sid = "RegisterTablesAndPartitions"
    actions = [
      "glue:BatchCreatePartition", "glue:BatchGetPartition", "glue:CreatePartition", "glue:CreateTable",
      "glue:GetDatabase", "glue:GetPartition", "glue:GetPartitions", "glue:GetTable", "glue:GetTables",
      "glue:UpdatePartition", "glue:UpdateTable",
    ]
    resources = local.glue_resource_arns
  }
  statement {
    sid       = "UseProjectKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [local.key_arn]
  }
  statement {
    sid       = "VerifyModelSignatures"
    actions   = ["kms:GetPublicKey"]
    resources = [aws_kms_key.model_signing.arn]
  }
}

resource "aws_iam_role_policy" "consumer" {
  name   = "consume"
  role   = aws_iam_role.consumer.id
  policy = data.aws_iam_policy_document.consumer.json
}

# --- Producer: write the stream, remember replay progress, read input files. ---

resource "aws_iam_role" "producer" {
  name               = "${local.producer_family}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "WriteStream"
    actions   = ["kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.ingest.arn]
  }
  statement {
    sid       = "ReplayProgress"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.leases.arn]
  }
  statement {
    sid       = "EnsureLakeTables"
    actions   = local.glue_ensure_tables
    resources = local.glue_resource_arns
  }
  statement {
    sid       = "ListInput"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [local.bucket_arns["raw"]]
  }
  statement {
    sid       = "ReadInput"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["raw"]}/input/*"]
  }
  statement {
    sid       = "UseProjectKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [local.key_arn]
  }
}

resource "aws_iam_role_policy" "producer" {
  name   = "produce"
  role   = aws_iam_role.producer.id
  policy = data.aws_iam_policy_document.producer.json
}

# --- Portal: SQL, models, replay control and the scaling view. ---

resource "aws_iam_role" "portal" {
  count = var.enable_portal ? 1 : 0

  name               = "${local.portal_name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "portal" {
  statement {
    sid = "RunQueries"
    actions = [
      "athena:GetQueryExecution", "athena:GetQueryResults", "athena:GetWorkGroup",
      "athena:StartQueryExecution", "athena:StopQueryExecution",
    ]
    resources = [aws_athena_workgroup.main.arn]
  }
  statement {
    sid = "ReadCatalogAndEnsureTables"
    actions = concat(local.glue_ensure_tables, [
      "glue:BatchGetPartition", "glue:GetDatabases", "glue:GetPartition", "glue:GetPartitions", "glue:GetTables",
    ])
    resources = local.glue_resource_arns
  }
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = values(local.bucket_arns)
  }
  statement {
    sid       = "ReadLake"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["curated"]}/*"]
  }
  statement {
    sid       = "QueryResultUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arns["athena-results"]]
  }
  statement {
    sid     = "QueryResultsModelsAndReplayInput"
    actions = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"]
    resources = [
      "${local.bucket_arns["athena-results"]}/*",
      "${local.bucket_arns["models"]}/*",
      "${local.bucket_arns["raw"]}/input/*",
    ]
  }
  statement {
    sid = "PipelineState"
    actions = [
      "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
      "dynamodb:Scan", "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.leases.arn]
  }
  statement {
    sid       = "StreamLag"
    actions   = ["kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.ingest.arn]
  }
  statement {
    sid       = "StartProducer"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${local.producer_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  # RunTask propagates the task definition's tags, which needs the tag permission on create.
  statement {
    sid       = "TagProducerTasks"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${local.cluster_name}/*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }
  statement {
    sid       = "WatchAndStopTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${local.cluster_name}/*"]
  }
  statement {
    sid       = "ListTasks"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    sid       = "ScaleConsumers"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:service/${local.cluster_name}/${local.consumer_name}"]
  }
  # The Scaling page changes the consumer's bounds and CPU target (Terraform resets them on
  # its next apply); target tracking manages its own alarms for the service.
  statement {
    sid       = "ChangeConsumerScaling"
    actions   = ["application-autoscaling:PutScalingPolicy", "application-autoscaling:RegisterScalableTarget"]
    resources = [local.consumer_scaling_target]
  }
  statement {
    sid       = "TargetTrackingAlarms"
    actions   = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"]
    resources = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:TargetTracking-service/${local.cluster_name}/${local.consumer_name}-*"]
  }
  statement {
    sid       = "PassProducerRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.producer.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid = "ReadScalingAndMetrics"
    actions = [
      "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingActivities",
      "application-autoscaling:DescribeScalingPolicies", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics",
      "ecs:DescribeTaskDefinition",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "UseProjectKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [local.key_arn]
  }
  # The portal verifies uploaded and published models; it cannot sign (infra/kms.tf).
  statement {
    sid       = "VerifyModelSignatures"
    actions   = ["kms:GetPublicKey"]
    resources = [aws_kms_key.model_signing.arn]
  }
}

resource "aws_iam_role_policy" "portal" {
  count = var.enable_portal ? 1 : 0

  name   = "portal"
  role   = aws_iam_role.portal[0].id
  policy = data.aws_iam_policy_document.portal.json
}

# --- Firehose: read the stream, write the raw bucket, log delivery errors. ---

resource "aws_iam_role" "firehose" {
  name               = "${local.firehose_name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.service_assume["firehose"].json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "ReadStream"
    actions   = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.ingest.arn]
  }
  statement {
    sid = "DeliverToRawBucket"
    actions = [
      "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
      "s3:ListBucketMultipartUploads", "s3:PutObject",
    ]
    resources = [local.bucket_arns["raw"], "${local.bucket_arns["raw"]}/*"]
  }
  statement {
    sid       = "UseProjectKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.key_arn]
  }
  statement {
    sid       = "LogDeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "deliver"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

# --- VPC flow logs into their log group. ---

resource "aws_iam_role" "flow_logs" {
  name               = "${local.prefix}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.service_assume["vpc-flow-logs"].json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
