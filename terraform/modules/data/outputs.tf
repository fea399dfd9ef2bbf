output "table_name" {
  description = "DynamoDB table name (CP_DYNAMODB_TABLE)."
  value       = aws_dynamodb_table.control_plane.name
}

output "table_arn" {
  description = "DynamoDB table ARN (task role policy)."
  value       = aws_dynamodb_table.control_plane.arn
}

output "kms_key_arn" {
  description = "Customer-managed KMS key for the table, secrets and log groups."
  value       = aws_kms_key.this.arn
}
