# Terraform and provider constraints. The lock file is written by `terraform init` in CI
# and by project_up.sh; this repository's own test machine cannot download providers.
terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  # Every taggable resource gets these, so cost reports and the leftover check can find
  # what this project created.
  default_tags {
    tags = {
      Project     = var.name_prefix
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
