# Example production values: terraform -chdir=terraform apply -var-file=examples/prod.tfvars
name                  = "ai-gateway"
region                = "eu-west-1"
certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
envoy_image           = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ai-gateway-envoy@sha256:0000000000000000000000000000000000000000000000000000000000000000"
control_plane_image   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ai-gateway-control-plane@sha256:0000000000000000000000000000000000000000000000000000000000000000"
cognito_domain_prefix = "example-ai-gateway"
vpc_cidr              = "10.40.0.0/16"

m2m_clients = {
  "search-service" = ["invoke"]
  "support-bot"    = ["invoke"]
}

envoy_min_count           = 2
envoy_max_count           = 30
envoy_cpu_target          = 60
envoy_requests_per_target = 3000
waf_rate_limit            = 2000
log_retention_days        = 365
alarm_sns_topic_arn       = "arn:aws:sns:eu-west-1:123456789012:ai-gateway-alarms"

tags = {
  "team"        = "platform"
  "cost-center" = "ml-platform"
}
