# The ECS cluster (Fargate and Fargate Spot), one task definition per role of the image,
# the consumer and portal services, the one-off producer task, and consumer auto-scaling.

resource "aws_ecs_cluster" "main" {
  #checkov:skip=CKV_AWS_65:Container Insights bills per metric (several USD/month here); auto-scaling uses the free service CPU metric and the consumer serves Prometheus /metrics.
  name = local.cluster_name

  setting {
    name  = "containerInsights"
    value = "disabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  dynamic "default_capacity_provider_strategy" {
    for_each = local.capacity_strategy
    content {
      capacity_provider = default_capacity_provider_strategy.value.provider
      weight            = default_capacity_provider_strategy.value.weight
      base              = default_capacity_provider_strategy.value.base
    }
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  #checkov:skip=CKV_AWS_338:Logs are kept 1 day by product decision (cost); they serve live debugging only.
  for_each = toset(["consumer", "producer", "portal", "bi-views"])

  name              = "${local.log_group_prefix}/ecs/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  environment = [for name, value in local.container_env : { name = name, value = value }]

  # The consumer serves /health (what its container health check probes) and /metrics.
  consumer_environment = [for name, value in merge(local.container_env, local.consumer_health_env) : { name = name, value = value }]

  # The portal also starts the producer task (Replay page), which needs a network to run in.
  portal_environment = concat(local.environment, [
    { name = "PETROSTREAM_TASK_SUBNETS", value = join(",", aws_subnet.public[*].id) },
    { name = "PETROSTREAM_TASK_SECURITY_GROUP", value = aws_security_group.workers.id },
  ])

  # Read-only root file system; /tmp is the task's scratch volume (PETROSTREAM_HOME and HOME
  # point there in the image). 120 s is Fargate Spot's interruption notice, so a stopping
  # consumer can finish its batch and checkpoint.
  container_base = {
    image                  = local.image
    essential              = true
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    stopTimeout            = 120
  }

  health_probe = "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=4).status != 200)"

  log_options = {
    for role in ["consumer", "producer", "portal", "bi-views"] : role => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks[role].name
        awslogs-region        = var.region
        awslogs-stream-prefix = role
      }
    }
  }

  # What differs between the three jobs of the one image.
  containers = {
    consumer = {
      name             = "consumer"
      command          = ["python", "-m", "engine", "consume"]
      portMappings     = [{ containerPort = 8080, protocol = "tcp" }]
      environment      = local.consumer_environment
      logConfiguration = local.log_options["consumer"]
      healthCheck = {
        command     = ["CMD", "python", "-c", local.health_probe, "http://127.0.0.1:8080/health"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    }
    producer = {
      name             = "producer"
      command          = var.producer_command
      environment      = local.environment
      logConfiguration = local.log_options["producer"]
    }
    bi_views = {
      name             = "bi-views"
      command          = ["python", "-m", "engine", "bi-views"]
      environment      = local.environment
      logConfiguration = local.log_options["bi-views"]
    }
    portal = {
      name             = "portal"
      command          = ["streamlit", "run", "control_center/app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
      portMappings     = [{ containerPort = 8501, protocol = "tcp" }]
      environment      = local.portal_environment
      logConfiguration = local.log_options["portal"]
      healthCheck = {
        command     = ["CMD", "python", "-c", local.health_probe, "http://127.0.0.1:8501/_stcore/health"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    }
  }
}

resource "aws_ecs_task_definition" "consumer" {
  family                   = local.consumer_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.consumer_cpu
  memory                   = var.consumer_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.consumer.arn

  # Graviton: Fargate's ARM64 vCPU and memory cost 20 % less than x86 (docs/COST.md); Fargate Spot
  # takes ARM64 tasks on platform 1.4.0 and later (LATEST). The image is built for linux/arm64.
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container_base, local.containers["consumer"])])
}

resource "aws_ecs_task_definition" "producer" {
  family                   = local.producer_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.producer_cpu
  memory                   = var.producer_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.producer.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container_base, local.containers["producer"])])
}

resource "aws_ecs_task_definition" "portal" {
  count = var.enable_portal ? 1 : 0

  family                   = local.portal_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.portal_cpu
  memory                   = var.portal_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.portal[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container_base, local.containers["portal"])])
}

# Tasks find the stream, table, catalog and buckets by name (container_env), which Terraform
# cannot see as a dependency: without these edges the first apply may start a task before they,
# the network or the permissions exist, and the circuit breaker rolls the deployment back.
# Both services wait for this (and for their own role's policy).
resource "terraform_data" "task_prerequisites" {
  depends_on = [
    aws_ecs_cluster_capacity_providers.main,
    aws_kinesis_stream.ingest,
    aws_dynamodb_table.leases,
    aws_glue_catalog_database.main,
    aws_athena_workgroup.main,
    aws_s3_bucket.data,
    aws_s3_bucket_policy.data,
    aws_iam_role_policy.execution,
    aws_route_table_association.public,
    aws_vpc_endpoint.gateway,
    aws_vpc_security_group_egress_rule.https_out,
  ]
}

resource "aws_ecs_service" "consumer" {
  #checkov:skip=CKV_AWS_333:Tasks need a public address to reach AWS APIs because the VPC has no NAT gateway (it would cost more than the whole deployment); their security group admits no inbound traffic from the internet.
  name                    = local.consumer_name
  cluster                 = aws_ecs_cluster.main.id
  task_definition         = aws_ecs_task_definition.consumer.arn
  desired_count           = var.consumer_min_count
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  # No load balancer: ECS replaces a task whose container health check (/health) fails.

  dynamic "capacity_provider_strategy" {
    for_each = local.capacity_strategy
    content {
      capacity_provider = capacity_provider_strategy.value.provider
      weight            = capacity_provider_strategy.value.weight
      base              = capacity_provider_strategy.value.base
    }
  }

  network_configuration {
    subnets          = aws_subnet.public[*].id
    security_groups  = [aws_security_group.workers.id]
    assign_public_ip = true
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The auto-scaler owns the task count once the service exists.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [terraform_data.task_prerequisites, aws_iam_role_policy.consumer]
}

resource "aws_ecs_service" "portal" {
  #checkov:skip=CKV_AWS_333:Tasks need a public address to reach AWS APIs because the VPC has no NAT gateway; inbound traffic is admitted from the load balancer only.
  count = var.enable_portal ? 1 : 0

  name                              = local.portal_name
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.portal[0].arn
  desired_count                     = var.portal_desired_count
  platform_version                  = "LATEST"
  propagate_tags                    = "SERVICE"
  enable_ecs_managed_tags           = true
  health_check_grace_period_seconds = 120

  dynamic "capacity_provider_strategy" {
    for_each = local.capacity_strategy
    content {
      capacity_provider = capacity_provider_strategy.value.provider
      weight            = capacity_provider_strategy.value.weight
      base              = capacity_provider_strategy.value.base
    }
  }

  network_configuration {
    subnets          = aws_subnet.public[*].id
    security_groups  = [aws_security_group.portal.id]
    assign_public_ip = true
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.portal[0].arn
    container_name   = "portal"
    container_port   = 8501
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The listener too: ECS refuses a target group that is not attached to a load balancer yet.
  depends_on = [terraform_data.task_prerequisites, aws_iam_role_policy.portal, aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "consumer" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.consumer.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.consumer_min_count
  max_capacity       = var.consumer_max_count
}

resource "aws_appautoscaling_policy" "consumer_cpu" {
  name               = "${local.consumer_name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.consumer.service_namespace
  resource_id        = aws_appautoscaling_target.consumer.resource_id
  scalable_dimension = aws_appautoscaling_target.consumer.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.consumer_cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
