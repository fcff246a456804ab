# One customer-managed key encrypts the stream, the lake, the lease table, the image
# repository and the logs. One key costs 1 USD/month and nothing once scheduled for deletion.

resource "aws_kms_key" "main" {
  description             = "${local.prefix}: stream, lake, leases, images and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" means this key only; the account statement delegates use to IAM.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" means this key only.
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" means this key only; key administration stays with the account.
  # The account administers the key and lets IAM policies grant its use, so each task
  # role below names the key explicitly instead of the key policy naming each role.
  statement {
    sid = "AccountAdministersAndDelegatesToIam"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions = [
      "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
      "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
      "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
      "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:RetireGrant",
      "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
      "kms:UpdateAlias", "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }

  # CloudWatch Logs encrypts with the key itself, only for this project's log groups.
  statement {
    sid = "CloudWatchLogsForProjectLogGroups"
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_prefix}/*"]
    }
  }
}

# The model signing key (engine/model_signing.py): an asymmetric key whose private half never
# leaves KMS. Only the model signers (var.model_signer_arns, by default the identity that runs
# Terraform, i.e. the operator or the CI deploy role) may Sign; the account delegates every
# other use to IAM, and only the consumer and portal roles get GetPublicKey to verify. A
# pickle written into the models bucket without this key's signature is never loaded.
resource "aws_kms_key" "model_signing" {
  #checkov:skip=CKV_AWS_7:KMS does not rotate asymmetric keys; a new key means re-signing the published models.
  description              = "${local.prefix}: model signing (trainer signs, consumers verify)"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 7
  policy                   = data.aws_iam_policy_document.model_signing.json
}

resource "aws_kms_alias" "model_signing" {
  name          = local.model_signing_alias
  target_key_id = aws_kms_key.model_signing.key_id
}

data "aws_iam_session_context" "deployer" {
  arn = data.aws_caller_identity.current.arn
}

locals {
  # Tasks name the key by its alias (IAM still grants on the key's ARN); only account
  # administrators may point the alias elsewhere.
  model_signing_alias = "alias/${local.prefix}-model-signing"
  model_signers       = length(var.model_signer_arns) > 0 ? var.model_signer_arns : [data.aws_iam_session_context.deployer.issuer_arn]
}

data "aws_iam_policy_document" "model_signing" {
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" means this key only.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" means this key only.
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" means this key only; key administration stays with the account.
  # Administration and verification are delegated to IAM; kms:Sign is deliberately absent here,
  # so no IAM policy can grant it: only the statement below can.
  statement {
    sid = "AccountAdministersAndDelegatesVerification"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions = [
      "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
      "kms:EnableKey", "kms:GetKeyPolicy", "kms:GetPublicKey", "kms:ListAliases", "kms:ListResourceTags",
      "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias",
      "kms:UpdateKeyDescription", "kms:Verify",
    ]
    resources = ["*"]
  }

  statement {
    sid = "OnlyModelSignersSign"
    principals {
      type        = "AWS"
      identifiers = local.model_signers
    }
    actions   = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"]
    resources = ["*"]
  }
}
