# The control plane's single table, exactly as control-plane/src/store/dynamo.rs creates it
# locally (docs/control-plane.md "DynamoDB"): string keys pk (hash) and sk (range), on-demand,
# no secondary index (key lookups by hash use claim items, not a GSI). tests/ops checks this.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only; the account-root statement is AWS's default and keeps the key manageable through IAM.
  #checkov:skip=CKV_AWS_356:Same: in a key policy "*" is the key itself.
  #checkov:skip=CKV_AWS_109:Same: without the root statement the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  # CloudWatch Logs encrypts the gateway's log groups with this key.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: DynamoDB table, provider secrets, log groups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_dynamodb_table" "control_plane" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Usage batch markers expire (control-plane/src/store/dynamo.rs, MARKER_TTL_SECS), and audit
  # records too when CP_AUDIT_RETENTION_DAYS is set (ADR 0021); usage aggregates and config items
  # carry no expires_at and are kept. Audit records live in this table's pk/sk (no index needed).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  deletion_protection_enabled = true
}
