# Release infrastructure, once per AWS account and apart from the per-environment stack in
# terraform/ (docs/operations.md, "Release"): the ECR repositories the release workflow pushes
# to and the GitHub OIDC roles it assumes. Applied by a person with admin rights before the
# first release; the workflow cannot create the role it needs to run.

module "registry" {
  source       = "../modules/registry"
  name         = var.name
  repositories = ["envoy", "control-plane"]
}

module "github_oidc" {
  source                = "../modules/github_oidc"
  name                  = var.name
  github_repository     = var.github_repository
  tag_pattern           = var.tag_pattern
  create_provider       = var.create_oidc_provider
  existing_provider_arn = var.existing_oidc_provider_arn
  repository_arns       = values(module.registry.repository_arns)
  state_bucket_arn      = var.state_bucket_arn
  state_kms_key_arn     = var.state_kms_key_arn
}
