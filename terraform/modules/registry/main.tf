# ECR repositories the release workflow pushes to (.github/workflows/release.yml): immutable
# tags (a released tag never points elsewhere; Cosign's signature tags are written once), a scan
# on every push (ECR basic scanning, next to the Trivy gate before the push), encryption with a
# customer-managed KMS key, and a lifecycle policy that keeps the store bounded.

data "aws_caller_identity" "current" {}

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
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: ECR image layers"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-ecr"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_ecr_repository" "this" {
  for_each             = toset(var.repositories)
  name                 = "${var.name}-${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        # Orphans of an aborted push. The per-platform manifests of a released index are untagged
        # too, but ECR does not delete an image a manifest list still references.
        rulePriority = 1
        description  = "expire untagged images after ${var.untagged_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        # Releases: the newest N stay, enough to roll back to any recent one.
        rulePriority = 2
        description  = "keep the last ${var.keep_releases} release tags"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["v"]
          countType     = "imageCountMoreThan"
          countNumber   = var.keep_releases
        }
        action = { type = "expire" }
      },
      {
        # Cosign's signatures and attestations (tags sha256-<digest>.sig/.att, about six per
        # release: index and two platforms, each signed and attested).
        rulePriority = 3
        description  = "keep the newest signatures and attestations"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["sha256-"]
          countType     = "imageCountMoreThan"
          countNumber   = var.keep_releases * 8
        }
        action = { type = "expire" }
      },
    ]
  })
}
