# The hosted portal (enable_portal = true): an HTTPS load balancer reachable only from
# allowed_cidrs, HTTP redirected to HTTPS, Cognito sign-in before every request (auth.tf), the
# portal as its only target. The consumer's /health and /metrics are not routed through it:
# ECS probes the consumer's health inside the task (its container health check), and nothing
# on the internet needs either page. Off by default: the load balancer and its two
# public addresses would cost about as much as the rest of the deployment (docs/COST.md).

locals {
  portal_count = var.enable_portal ? 1 : 0
  portal_host  = var.portal_hostname != "" ? var.portal_hostname : try(aws_lb.portal[0].dns_name, "")
}

resource "aws_security_group" "alb" {
  count = local.portal_count

  name        = "${local.prefix}-alb"
  description = "Portal load balancer: HTTPS and the HTTP redirect from allowed networks"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = var.enable_portal ? {
    for pair in setproduct(var.allowed_cidrs, [80, 443]) : "${pair[0]}-${pair[1]}" => { cidr = pair[0], port = pair[1] }
  } : {}

  security_group_id = aws_security_group.alb[0].id
  description       = "Allowed network ${each.value.cidr} on ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  for_each = var.enable_portal ? {
    portal = { group = aws_security_group.portal.id, port = 8501 }
  } : {}

  security_group_id            = aws_security_group.alb[0].id
  description                  = "To ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = each.value.group
}

# authenticate-cognito: the load balancer itself calls the user pool's token endpoint over HTTPS.
resource "aws_vpc_security_group_egress_rule" "alb_to_identity_provider" {
  count = local.portal_count

  security_group_id = aws_security_group.alb[0].id
  description       = "To the Cognito sign-in endpoints (HTTPS)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  for_each = var.enable_portal ? {
    portal = { group = aws_security_group.portal.id, port = 8501 }
  } : {}

  security_group_id            = each.value.group
  description                  = "From the portal load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.alb[0].id
}

resource "aws_lb" "portal" {
  #checkov:skip=CKV_AWS_150:project_down.sh must be able to destroy the load balancer; it holds no data.
  #checkov:skip=CKV2_AWS_28:Access is limited to allowed_cidrs by the security group; a WAF would add at least 6 USD/month to a demo.
  #checkov:skip=CKV2_AWS_76:No WAF (see CKV2_AWS_28); the portal is a Python app, not exposed to Log4j.
  count = local.portal_count

  name                       = "${local.prefix}-portal"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb[0].id]
  drop_invalid_header_fields = true
  # Streamlit keeps a websocket open; the default 60 s would drop idle sessions.
  idle_timeout = 300

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "portal" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC and its security groups.
  count = local.portal_count

  name        = "${local.prefix}-portal"
  port        = 8501
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id

  health_check {
    path    = "/_stcore/health"
    matcher = "200"
  }

  # A Streamlit session lives on one task.
  stickiness {
    type    = "lb_cookie"
    enabled = true
  }
}

resource "aws_lb_listener" "http" {
  count = local.portal_count

  load_balancer_arn = aws_lb.portal[0].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  count = local.portal_count

  load_balancer_arn = aws_lb.portal[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # Every portal request first passes Cognito sign-in (infra/auth.tf); only then is it forwarded.
  default_action {
    type  = "authenticate-cognito"
    order = 1

    authenticate_cognito {
      user_pool_arn              = aws_cognito_user_pool.portal[0].arn
      user_pool_client_id        = aws_cognito_user_pool_client.portal[0].id
      user_pool_domain           = aws_cognito_user_pool_domain.portal[0].domain
      on_unauthenticated_request = "authenticate"
      session_timeout            = 28800
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.portal[0].arn
  }

  lifecycle {
    precondition {
      condition     = var.certificate_arn != ""
      error_message = "enable_portal needs certificate_arn: an ACM certificate for the portal's host name."
    }
  }
}
