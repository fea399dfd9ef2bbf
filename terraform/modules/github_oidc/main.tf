# GitHub Actions' OIDC identity provider and the two roles .github/workflows/release.yml assumes
# with it (no long-lived AWS keys anywhere): `release` pushes to the ECR repositories of the
# registry module and nothing else; `plan` reads the account for `terraform plan` and the state.
# Both trust only tokens of this repository's release tags (sub repo:<owner>/<name>:ref:refs/
# tags/<pattern>), for the STS audience: a branch, a fork or a pull request gets nothing.

locals {
  issuer       = "token.actions.githubusercontent.com"
  provider_arn = var.create_provider ? aws_iam_openid_connect_provider.github[0].arn : var.existing_provider_arn
}

# One per account: set create_provider = false where another stack already made it.
resource "aws_iam_openid_connect_provider" "github" {
  count          = var.create_provider ? 1 : 0
  url            = "https://${local.issuer}"
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM validates GitHub's certificate against its own trusted CAs.
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GitHubReleaseTags"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "${local.issuer}:sub"
      values   = ["repo:${var.github_repository}:ref:refs/tags/${var.tag_pattern}"]
    }
  }
}

resource "aws_iam_role" "release" {
  name                 = "${var.name}-release"
  description          = "GitHub Actions release workflow of ${var.github_repository}: push images to ECR"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "release" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource-level permissions; it is the only action on "*".
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  # Push (skopeo) and read back (skopeo inspect, cosign sign/attest write their own tags).
  statement {
    sid = "PushToReleaseRepositories"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = var.repository_arns
  }
}

resource "aws_iam_role_policy" "release" {
  name   = "push-images"
  role   = aws_iam_role.release.id
  policy = data.aws_iam_policy_document.release.json
}

resource "aws_iam_role" "plan" {
  name                 = "${var.name}-plan"
  description          = "GitHub Actions release workflow of ${var.github_repository}: read-only terraform plan"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
}

# Describe/List/Get on the services the stack uses, for terraform's refresh.
resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [var.state_bucket_arn, "${var.state_bucket_arn}/ai-gateway/*"]
  }
  dynamic "statement" {
    for_each = var.state_kms_key_arn == "" ? [] : [var.state_kms_key_arn]
    content {
      sid       = "DecryptState"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
  # ReadOnlyAccess also reads data; a plan never needs the gateway's items or secret values.
  statement {
    sid    = "NoDataReads"
    effect = "Deny"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:GetRecords",
      "dynamodb:Query",
      "dynamodb:Scan",
      "secretsmanager:GetSecretValue",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "plan" {
  name   = "read-state"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}
