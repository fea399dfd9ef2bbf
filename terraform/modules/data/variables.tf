variable "name" {
  description = "Resource name prefix and the table name the control plane reads from CP_DYNAMODB_TABLE."
  type        = string
}
