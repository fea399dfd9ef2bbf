terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Same range as the stack (../versions.tf); the OIDC provider without thumbprint_list
      # needs >= 5.81.
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
