variable "name" {
  description = "Resource name prefix."
  type        = string
}

variable "region" {
  description = "Region (awslogs driver, collector exporters)."
  type        = string
}

variable "vpc_id" {
  description = "VPC id."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Only this security group reaches the Envoy listener."
  type        = string
}

variable "target_group_arn" {
  description = "ALB target group of the Envoy service."
  type        = string
}

variable "alb_resource_label" {
  description = "ALB/target-group label for ALBRequestCountPerTarget."
  type        = string
}

variable "envoy_image" {
  description = "Image built from Dockerfile.envoy."
  type        = string
}

variable "control_plane_image" {
  description = "Image built from Dockerfile.control."
  type        = string
}

variable "adot_image" {
  description = "ADOT collector image."
  type        = string
}

variable "table_name" {
  description = "DynamoDB table (CP_DYNAMODB_TABLE)."
  type        = string
}

variable "table_arn" {
  description = "DynamoDB table ARN."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the table and secrets (decrypt for the roles that read them)."
  type        = string
}

variable "provider_secret_arns" {
  description = "Provider secrets by env var name (injected into Envoy)."
  type        = map(string)
}

variable "control_plane_secret_arns" {
  description = "CP_ADMIN_TOKEN and CP_WATCH_TOKEN secret ARNs."
  type        = map(string)
}

variable "envoy_log_group" {
  description = "Log group of the Envoy container."
  type        = string
}

variable "control_plane_log_group" {
  description = "Log group of the control plane."
  type        = string
}

variable "collector_log_group" {
  description = "Log group of the ADOT collector."
  type        = string
}

variable "desired_count" {
  description = "Envoy tasks at deploy time."
  type        = number
}

variable "min_count" {
  description = "Envoy autoscaling floor."
  type        = number
}

variable "max_count" {
  description = "Envoy autoscaling ceiling."
  type        = number
}

variable "cpu_target" {
  description = "Target CPU percent."
  type        = number
}

variable "requests_per_target" {
  description = "Target ALBRequestCountPerTarget."
  type        = number
}

variable "metrics_log_group" {
  description = "Log group the collector writes EMF metrics to (AI_GATEWAY_METRICS_LOG_GROUP)."
  type        = string
}

variable "audit_retention_days" {
  description = "CP_AUDIT_RETENTION_DAYS of the control plane: days audit records are kept; 0 keeps them forever."
  type        = number
  default     = 0
}
