terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: the ALB `jwt-validation` listener action (edge module) needs a 6.x release.
      version = ">= 6.20, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = merge(var.tags, { "app" = var.name })
  }
}
