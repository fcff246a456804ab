# Where the engine keeps state and answers SQL: the lease table, the Glue database (the
# engine creates and registers its tables and date partitions) and the Athena workgroup.

resource "aws_dynamodb_table" "leases" {
  name         = local.lease_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease_key"

  attribute {
    name = "lease_key"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

resource "aws_glue_catalog_database" "main" {
  name        = local.glue_database
  description = "PetroStream lake tables (well_data, anomaly_events, dead_letters), partitioned by date."
}

resource "aws_athena_workgroup" "main" {
  name = local.prefix
  # Query history is not data; it must not block project_down.sh.
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${aws_s3_bucket.data["athena-results"].bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.main.arn
      }
    }
  }
}
