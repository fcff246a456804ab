# Inputs. The defaults are the lean demo deployment priced in docs/COST.md.

variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; the engine derives its default names from 'petrostream'."
  type        = string
  default     = "petrostream"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name_prefix))
    error_message = "name_prefix must be 3-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Value of the Environment tag."
  type        = string
  default     = "demo"
}

variable "image_tag" {
  description = "Tag of the application image in ECR (project_up.sh and CI pass the git commit)."
  type        = string
  default     = "bootstrap"
}

variable "vpc_cidr" {
  description = "Address range of the project VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "kinesis_on_demand" {
  description = "Use an on-demand Kinesis stream instead of provisioned shards (about 29 USD/month more at idle)."
  type        = bool
  default     = false
}

variable "kinesis_shard_count" {
  description = "Provisioned shards of the ingest stream (ignored when kinesis_on_demand is true)."
  type        = number
  default     = 1

  validation {
    condition     = var.kinesis_shard_count >= 1 && var.kinesis_shard_count <= 64
    error_message = "kinesis_shard_count must be between 1 and 64."
  }
}

variable "kinesis_retention_hours" {
  description = "How long the stream keeps records (24 is the free minimum)."
  type        = number
  default     = 24
}

variable "consumer_min_count" {
  description = "Fewest consumer tasks the auto-scaler keeps running."
  type        = number
  default     = 1

  validation {
    condition     = var.consumer_min_count >= 1
    error_message = "consumer_min_count must be at least 1."
  }
}

variable "consumer_max_count" {
  description = "Most consumer tasks; more consumers than shards only stand by for a lease."
  type        = number
  default     = 2

  validation {
    condition     = var.consumer_max_count >= 1 && var.consumer_max_count <= 32
    error_message = "consumer_max_count must be between 1 and 32."
  }
}

variable "consumer_cpu_target_percent" {
  description = "Average CPU of the consumer service above which the auto-scaler adds tasks."
  type        = number
  default     = 70
}

variable "consumer_batch_seconds" {
  description = "Seconds a consumer gathers a shard's records into one batch (4 MiB at most). Each batch costs S3 PUTs and a DynamoDB checkpoint: 1 s would be about 40 USD/month per shard, 15 s about 3 USD, at the price of that much latency."
  type        = number
  default     = 15
}

variable "consumer_health_stale_seconds" {
  description = "The consumer's /health answers 503 (and ECS replaces the task) when its loop has not completed an iteration for this long. Longer than a micro-batch and the consumer's 10 s back-off cap, so an AWS blip does not cost a restart."
  type        = number
  default     = 180

  validation {
    condition     = var.consumer_health_stale_seconds >= 30
    error_message = "consumer_health_stale_seconds must be at least 30 (the consumer backs off up to 10 s between attempts)."
  }
}

variable "consumer_cpu" {
  description = "CPU units of a consumer task (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "consumer_memory" {
  description = "Memory (MiB) of a consumer task."
  type        = number
  default     = 1024
}

variable "bi_views_schedule" {
  description = "When the Power BI views move their look-back forward (EventBridge Scheduler expression, UTC)."
  type        = string
  default     = "cron(15 0 * * ? *)"
}

variable "producer_cpu" {
  description = "CPU units of the producer task."
  type        = number
  default     = 256
}

variable "producer_memory" {
  description = "Memory (MiB) of the producer task."
  type        = number
  default     = 512
}

variable "producer_command" {
  description = "Command of the producer task; the default replays generated demo data at real time."
  type        = list(string)
  default = [
    "sh", "-c",
    "python -m engine demo-data --out /tmp/petrostream/demo && exec python -m engine replay --data /tmp/petrostream/demo --speed 1",
  ]
}

variable "fargate_spot_weight" {
  description = "Relative share of tasks placed on FARGATE_SPOT."
  type        = number
  default     = 1

  validation {
    condition     = var.fargate_spot_weight >= 0 && var.fargate_spot_weight <= 1000
    error_message = "fargate_spot_weight must be between 0 and 1000."
  }
}

variable "fargate_on_demand_weight" {
  description = "Relative share of tasks placed on on-demand FARGATE."
  type        = number
  default     = 0

  validation {
    condition     = var.fargate_on_demand_weight >= 0 && var.fargate_on_demand_weight <= 1000
    error_message = "fargate_on_demand_weight must be between 0 and 1000."
  }
}

variable "fargate_on_demand_base" {
  description = "Tasks of each service always placed on on-demand FARGATE before the weights apply. Fargate Spot has no fallback of its own: with a base of 0, no consumer runs while Spot capacity is short. 1 keeps one consumer on-demand (+6.91 USD/month, docs/COST.md); extra tasks go to Spot."
  type        = number
  default     = 1

  validation {
    condition     = var.fargate_on_demand_base >= 0 && var.fargate_on_demand_base <= 10
    error_message = "fargate_on_demand_base must be between 0 and 10."
  }
}

variable "enable_portal" {
  description = "Run the portal on ECS behind an HTTPS load balancer (about 32 USD/month more); otherwise run it locally against the aws backend."
  type        = bool
  default     = false
}

variable "portal_desired_count" {
  description = "Portal tasks when enable_portal is true."
  type        = number
  default     = 1
}

variable "portal_cpu" {
  description = "CPU units of a portal task."
  type        = number
  default     = 256
}

variable "portal_memory" {
  description = "Memory (MiB) of a portal task."
  type        = number
  default     = 1024
}

variable "allowed_cidrs" {
  description = "Networks allowed to reach the load balancer. Empty means nobody; the whole internet is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidrs : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "allowed_cidrs must be valid CIDR blocks narrower than /0."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the portal's HTTPS listener (required when enable_portal is true)."
  type        = string
  default     = ""
}

variable "portal_hostname" {
  description = "DNS name pointing at the load balancer that the certificate covers; empty uses the load balancer's own name."
  type        = string
  default     = ""
}

variable "budget_limit_usd" {
  description = "Monthly AWS Budgets alert threshold."
  type        = number
  default     = 10
}

variable "project_budget_usd" {
  description = "Alert threshold for the whole project over a year."
  type        = number
  default     = 120
}

variable "budget_alert_emails" {
  description = "Addresses the budget alerts are sent to."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps every log group of the project."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30."
  }
}

variable "raw_retention_days" {
  description = "Days the raw bucket keeps Firehose's copy of the stream."
  type        = number
  default     = 30
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels any query of the workgroup that scans more bytes than this."
  type        = number
  default     = 1073741824

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10 MB, Athena's minimum."
  }
}

variable "model_signer_arns" {
  description = "IAM roles or users allowed to sign models with the KMS model signing key (the trainer or CI role); empty means the identity that runs Terraform."
  type        = list(string)
  default     = []
}
