# Who may open the hosted portal: users of this Cognito user pool, signed in through the load
# balancer's authenticate-cognito action before any request reaches a portal task. Only an
# administrator creates users (no self sign-up); there is no anonymous path to the portal.

resource "aws_cognito_user_pool" "portal" {
  count = local.portal_count

  name                     = "${local.prefix}-portal"
  deletion_protection      = "INACTIVE" # project_down.sh removes everything
  mfa_configuration        = "OPTIONAL"
  auto_verified_attributes = ["email"]
  username_attributes      = ["email"]

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  software_token_mfa_configuration {
    enabled = true
  }

  user_pool_add_ons {
    advanced_security_mode = "OFF" # the paid tier; sign-in throttling and lockout stay on
  }
}

resource "aws_cognito_user_pool_domain" "portal" {
  count = local.portal_count

  domain       = "${local.prefix}-portal-${local.account_id}"
  user_pool_id = aws_cognito_user_pool.portal[0].id
}

resource "aws_cognito_user_pool_client" "portal" {
  count = local.portal_count

  name                                 = "${local.prefix}-portal-alb"
  user_pool_id                         = aws_cognito_user_pool.portal[0].id
  generate_secret                      = true # the load balancer is a confidential client
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = ["https://${local.portal_host}/oauth2/idpresponse"]
  prevent_user_existence_errors        = "ENABLED"
}
