variable "name" {
  description = "Resource name prefix."
  type        = string
}

variable "region" {
  description = "Region (VPC endpoint service names)."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC CIDR."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the flow-log group."
  type        = number
}

variable "availability_zones" {
  description = "The two AZ names; null means <region>a and <region>b."
  type        = list(string)
  default     = null
  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) == 2
    error_message = "Exactly two availability zones."
  }
}
