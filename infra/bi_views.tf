# The Power BI views (engine/bi.py) read a look-back of date partitions whose first day is
# written into them, as a view takes no parameters; the day moves forward each time
# `python -m engine bi-views` runs. A one-off task runs it every day, so Power BI's scans stay
# bounded without anyone re-running project_up.sh (the window ends at the newest partition, not
# at today, so a relative `current_date` predicate would lose replays of past data).
# It costs a minute of the smallest Fargate task and of a public address a day (under
# 0.01 USD/month) and an Athena DDL statement (not billed).

resource "aws_ecs_task_definition" "bi_views" {
  family                   = local.bi_views_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.producer_cpu
  memory                   = var.producer_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.bi_views.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container_base, local.containers["bi_views"])])
}

resource "aws_iam_role" "bi_views" {
  name               = "${local.bi_views_family}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "bi_views" {
  statement {
    sid       = "RunDdl"
    actions   = ["athena:GetQueryExecution", "athena:GetQueryResults", "athena:GetWorkGroup", "athena:StartQueryExecution"]
    resources = [aws_athena_workgroup.main.arn]
  }
  statement {
    sid       = "ReplaceViews"
    actions   = concat(local.glue_ensure_tables, ["glue:GetPartitions"])
    resources = local.glue_resource_arns
  }
  statement {
    sid       = "QueryResultsBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arns["athena-results"]]
  }
  statement {
    sid       = "QueryResults"
    actions   = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"]
    resources = ["${local.bucket_arns["athena-results"]}/*"]
  }
  statement {
    sid       = "UseProjectKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [local.key_arn]
  }
}

resource "aws_iam_role_policy" "bi_views" {
  name   = "replace-bi-views"
  role   = aws_iam_role.bi_views.id
  policy = data.aws_iam_policy_document.bi_views.json
}

# EventBridge Scheduler starts the task; its role may run that task definition and hand ECS
# the two roles the task uses, nothing else.
resource "aws_iam_role" "bi_views_schedule" {
  name               = "${local.bi_views_family}-schedule"
  assume_role_policy = data.aws_iam_policy_document.service_assume["scheduler"].json
}

data "aws_iam_policy_document" "bi_views_schedule" {
  statement {
    sid       = "RunBiViewsTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${local.bi_views_family}:*"]
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.bi_views.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "bi_views_schedule" {
  name   = "run-bi-views"
  role   = aws_iam_role.bi_views_schedule.id
  policy = data.aws_iam_policy_document.bi_views_schedule.json
}

resource "aws_scheduler_schedule" "bi_views" {
  #checkov:skip=CKV_AWS_297:The schedule holds no data, only which task to run; AWS encrypts it at rest with its own key.
  name                         = local.bi_views_family
  schedule_expression          = var.bi_views_schedule
  schedule_expression_timezone = "UTC"

  flexible_time_window {
    mode                      = "FLEXIBLE"
    maximum_window_in_minutes = 30
  }

  target {
    arn      = aws_ecs_cluster.main.arn
    role_arn = aws_iam_role.bi_views_schedule.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.bi_views.arn
      task_count          = 1
      # On-demand: Scheduler documents a public address (the tasks' way to AWS, no NAT) for the
      # FARGATE launch type; a minute a day costs the same fraction of a cent either way.
      launch_type      = "FARGATE"
      platform_version = "LATEST"

      network_configuration {
        subnets          = aws_subnet.public[*].id
        security_groups  = [aws_security_group.workers.id]
        assign_public_ip = true
      }
    }

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }

  depends_on = [terraform_data.task_prerequisites, aws_iam_role_policy.bi_views, aws_iam_role_policy.bi_views_schedule]
}
