variable "name" {
  description = "Prefix of every resource name; also the DynamoDB table name (CP_DYNAMODB_TABLE)."
  type        = string
  default     = "ai-gateway"
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into two public and two private /20-ish subnets across two AZs."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "The two AZ names of the VPC; null means <region>a and <region>b."
  type        = list(string)
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate for the ALB's HTTPS listener (the gateway's public host name)."
  type        = string
}

variable "envoy_image" {
  description = "Image built from Dockerfile.envoy, pinned by digest (repo@sha256:...)."
  type        = string
}

variable "control_plane_image" {
  description = "Image built from Dockerfile.control, pinned by digest."
  type        = string
}

variable "adot_image" {
  description = "AWS Distro for OpenTelemetry collector image (sidecar of the Envoy task)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito hosted domain that issues client_credentials tokens (globally unique)."
  type        = string
}

variable "m2m_clients" {
  description = "Machine-to-machine app clients to create: name => list of scopes (short names from var.scopes)."
  type        = map(list(string))
  default     = { "default" = ["invoke"] }
}

variable "scopes" {
  description = "Custom scopes of the gateway's resource server: short name => description."
  type        = map(string)
  default = {
    "invoke" = "Call the model APIs (chat completions, messages, embeddings)"
    "admin"  = "Reserved for control-plane administration through the gateway"
  }
}

variable "provider_secret_names" {
  description = "Provider credentials kept in Secrets Manager: env var name the filter reads => description. Values are set out of band (docs/operations.md)."
  type        = map(string)
  default = {
    "OPENAI_API_KEY"    = "OpenAI API key"
    "ANTHROPIC_API_KEY" = "Anthropic API key"
  }
}

variable "envoy_desired_count" {
  description = "Envoy tasks at deploy time (autoscaling moves between min and max)."
  type        = number
  default     = 2
}

variable "envoy_min_count" {
  description = "Autoscaling floor for Envoy tasks (at least one per AZ)."
  type        = number
  default     = 2
}

variable "envoy_max_count" {
  description = "Autoscaling ceiling for Envoy tasks."
  type        = number
  default     = 20
}

variable "envoy_cpu_target" {
  description = "Target average CPU (percent) of the Envoy service."
  type        = number
  default     = 60
}

variable "envoy_requests_per_target" {
  description = "Target ALBRequestCountPerTarget (requests per minute per task)."
  type        = number
  default     = 3000
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP before WAF blocks it."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (365 or more for audit)."
  type        = number
  default     = 365
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic notified by the alarms (empty: alarms without actions)."
  type        = string
  default     = ""
}

variable "audit_retention_days" {
  description = "Days the control plane keeps audit records (DynamoDB TTL on expires_at; ADR 0021). 0 keeps them forever."
  type        = number
  default     = 0
}
