# A VPC with two public subnets and no NAT gateway: a NAT gateway alone would cost more
# than the whole demo deployment. Tasks reach AWS APIs through their public address
# (egress limited to HTTPS) and S3/DynamoDB through free gateway endpoints.

# The region's available zones, regular ones only (Local and Wavelength Zones need opting in
# and lack Fargate). Zone letters differ between regions and accounts (ap-northeast-1 has no
# "b"), so the subnets take the first two zones listed rather than named ones.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Pinning zone names breaks regions that lack them (ap-northeast-1 has no "b"); the subnets take the first two names in sorted order, and AWS gives new zones later letters, so they do not move.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.prefix }
}

resource "aws_subnet" "public" {
  count = 2

  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index)
  availability_zone = sort(data.aws_availability_zones.available.names)[count.index]
  # Addresses are given per task by the services (assign_public_ip), not to everything.
  map_public_ip_on_launch = false

  tags = { Name = "${local.prefix}-public-${count.index}" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id

  tags = { Name = local.prefix }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }

  tags = { Name = "${local.prefix}-public" }
}

resource "aws_route_table_association" "public" {
  count = 2

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = toset(["s3", "dynamodb"])

  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id]

  tags = { Name = "${local.prefix}-${each.key}" }
}

# The default security group allows nothing, so nothing lands in it by accident.
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_flow_log" "main" {
  vpc_id               = aws_vpc.main.id
  traffic_type         = "REJECT"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn
}

resource "aws_cloudwatch_log_group" "flow" {
  #checkov:skip=CKV_AWS_338:Logs are kept 1 day by product decision (cost); they serve live debugging only.
  name              = "${local.log_group_prefix}/vpc-flow"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# Consumer and producer: no inbound traffic at all (ECS probes the consumer's health inside
# the task); outbound HTTPS only.
resource "aws_security_group" "workers" {
  name        = "${local.prefix}-workers"
  description = "Consumer and producer tasks"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "portal" {
  name        = "${local.prefix}-portal"
  description = "Portal tasks"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_egress_rule" "https_out" {
  for_each = {
    workers = aws_security_group.workers.id
    portal  = aws_security_group.portal.id
  }

  security_group_id = each.value
  description       = "HTTPS to AWS APIs and the image registry"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
