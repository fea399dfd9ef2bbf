variable "name" {
  description = "Resource name prefix (log groups /<name>/..., dashboard <name>)."
  type        = string
}

variable "region" {
  description = "Region shown by the dashboard widgets."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log groups."
  type        = string
}

variable "retention_days" {
  description = "Log retention in days."
  type        = number
}

variable "alb_arn_suffix" {
  description = "ALB ARN suffix (LoadBalancer dimension)."
  type        = string
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic for alarm actions; empty for none."
  type        = string
}
