# The whole stack (docs/operations.md): network -> data/secrets (KMS) -> identity -> edge -> compute,
# with observability shared by all.

module "network" {
  source             = "./modules/network"
  name               = var.name
  region             = var.region
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  kms_key_arn        = module.data.kms_key_arn
  log_retention_days = var.log_retention_days
}

module "data" {
  source = "./modules/data"
  name   = var.name
}

module "secrets" {
  source       = "./modules/secrets"
  name         = var.name
  kms_key_arn  = module.data.kms_key_arn
  secret_names = var.provider_secret_names
}

module "identity" {
  source        = "./modules/identity"
  name          = var.name
  domain_prefix = var.cognito_domain_prefix
  scopes        = var.scopes
  m2m_clients   = var.m2m_clients
}

module "observability" {
  source              = "./modules/observability"
  name                = var.name
  region              = var.region
  kms_key_arn         = module.data.kms_key_arn
  retention_days      = var.log_retention_days
  alb_arn_suffix      = module.edge.alb_arn_suffix
  alarm_sns_topic_arn = var.alarm_sns_topic_arn
}

module "edge" {
  source            = "./modules/edge"
  name              = var.name
  vpc_id            = module.network.vpc_id
  public_subnet_ids = module.network.public_subnet_ids
  certificate_arn   = var.certificate_arn
  jwt_issuer        = module.identity.issuer
  jwks_endpoint     = module.identity.jwks_endpoint
  required_scope    = module.identity.invoke_scope
  waf_rate_limit    = var.waf_rate_limit
  waf_log_group_arn = module.observability.waf_log_group_arn
}

module "compute" {
  source                    = "./modules/compute"
  name                      = var.name
  region                    = var.region
  vpc_id                    = module.network.vpc_id
  private_subnet_ids        = module.network.private_subnet_ids
  alb_security_group_id     = module.edge.alb_security_group_id
  target_group_arn          = module.edge.target_group_arn
  alb_resource_label        = module.edge.resource_label
  envoy_image               = var.envoy_image
  control_plane_image       = var.control_plane_image
  adot_image                = var.adot_image
  table_name                = module.data.table_name
  table_arn                 = module.data.table_arn
  kms_key_arn               = module.data.kms_key_arn
  provider_secret_arns      = module.secrets.provider_secret_arns
  control_plane_secret_arns = module.secrets.control_plane_secret_arns
  envoy_log_group           = module.observability.envoy_log_group_name
  control_plane_log_group   = module.observability.control_plane_log_group_name
  collector_log_group       = module.observability.collector_log_group_name
  metrics_log_group         = module.observability.metrics_log_group_name
  desired_count             = var.envoy_desired_count
  min_count                 = var.envoy_min_count
  max_count                 = var.envoy_max_count
  cpu_target                = var.envoy_cpu_target
  requests_per_target       = var.envoy_requests_per_target
  audit_retention_days      = var.audit_retention_days
}
