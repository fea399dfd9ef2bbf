terraform {
  required_version = ">= 1.6"
  # State per environment in S3 (partial configuration: bucket, key, region come from
  # `terraform init -backend-config=...`, as ops/release/plan.sh passes them; S3-native locking
  # with use_lockfile needs Terraform >= 1.10). `terraform init -backend=false` works without.
  backend "s3" {}
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The ALB `jwt-validation` action and `jwt_validation` block (edge module) arrived with
      # hashicorp/terraform-provider-aws#45089 (November 2025, a 6.2x release); `terraform init`
      # against this floor is not verified here (no network), raise it if plan rejects the block.
      version = ">= 6.22, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = merge(var.tags, { "app" = var.name })
  }
}
