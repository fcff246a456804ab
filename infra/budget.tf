# Budget alerts: a monthly one (default 10 USD) and one for the project's whole allowance.
# Budgets cover the whole account (cost allocation tags must be activated by hand before a
# tag filter works), so run the project in an account of its own.

locals {
  budgets = {
    monthly = { limit = var.budget_limit_usd, period = "MONTHLY", thresholds = { actual = 80, forecast = 100 } }
    project = { limit = var.project_budget_usd, period = "ANNUALLY", thresholds = { actual = 50, forecast = 100 } }
  }
}

resource "aws_budgets_budget" "cost" {
  for_each = local.budgets

  name         = "${local.prefix}-${each.key}"
  budget_type  = "COST"
  limit_amount = format("%.2f", each.value.limit)
  limit_unit   = "USD"
  time_unit    = each.value.period

  dynamic "notification" {
    for_each = length(var.budget_alert_emails) > 0 ? {
      ACTUAL     = each.value.thresholds.actual
      FORECASTED = each.value.thresholds.forecast
    } : {}
    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value
      threshold_type             = "PERCENTAGE"
      notification_type          = notification.key
      subscriber_email_addresses = var.budget_alert_emails
    }
  }
}

check "budget_alerts_have_a_recipient" {
  assert {
    condition     = length(var.budget_alert_emails) > 0
    error_message = "budget_alert_emails is empty: the budgets exist but will alert nobody."
  }
}
