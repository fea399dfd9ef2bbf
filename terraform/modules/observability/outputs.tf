output "envoy_log_group_name" {
  description = "Envoy container logs, including the JSON access log."
  value       = aws_cloudwatch_log_group.this["envoy"].name
}

output "control_plane_log_group_name" {
  description = "Control plane logs."
  value       = aws_cloudwatch_log_group.this["control-plane"].name
}

output "collector_log_group_name" {
  description = "ADOT collector's own logs."
  value       = aws_cloudwatch_log_group.this["collector"].name
}

output "waf_log_group_arn" {
  description = "WAF log group ARN."
  value       = aws_cloudwatch_log_group.waf.arn
}

output "dashboard_name" {
  description = "The gateway dashboard."
  value       = aws_cloudwatch_dashboard.gateway.dashboard_name
}

output "metrics_log_group_name" {
  description = "Log group of the collector's EMF metric events (CloudWatch extracts the AIGateway metrics from it)."
  value       = aws_cloudwatch_log_group.this["metrics"].name
}
