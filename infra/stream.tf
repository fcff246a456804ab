# The ingest stream and Firehose's raw copy of it in the raw bucket.

resource "aws_kinesis_stream" "ingest" {
  name             = local.stream_name
  shard_count      = var.kinesis_on_demand ? null : var.kinesis_shard_count
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = var.kinesis_on_demand ? "ON_DEMAND" : "PROVISIONED"
  }
}

resource "aws_kinesis_firehose_delivery_stream" "delivery" {
  #checkov:skip=CKV_AWS_240:Server-side encryption applies only to Direct PUT sources; the source here is the KMS-encrypted stream and delivery writes with the project key.
  #checkov:skip=CKV_AWS_241:Same as CKV_AWS_240: a Kinesis-stream source cannot take Firehose SSE; objects are encrypted with the project key on delivery.
  name        = local.firehose_name
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.ingest.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.data["raw"].arn
    prefix              = "stream/date=!{timestamp:yyyy-MM-dd}/"
    error_output_prefix = "stream-errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/"
    # Records are already zstd-compressed Parquet blocks; compressing again buys nothing.
    compression_format = "UNCOMPRESSED"
    buffering_size     = 5
    buffering_interval = 300
    kms_key_arn        = aws_kms_key.main.arn

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:Logs are kept 1 day by product decision (cost); they serve live debugging only.
  name              = "${local.log_group_prefix}/firehose"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}
