output "alb_dns_name" {
  description = "ALB DNS name."
  value       = aws_lb.this.dns_name
}

output "alb_arn_suffix" {
  description = "ALB ARN suffix (CloudWatch LoadBalancer dimension)."
  value       = aws_lb.this.arn_suffix
}

output "alb_security_group_id" {
  description = "ALB security group (the Envoy tasks accept traffic only from it)."
  value       = aws_security_group.alb.id
}

output "target_group_arn" {
  description = "Target group of the Envoy tasks."
  value       = aws_lb_target_group.envoy.arn
}

output "resource_label" {
  description = "ALB/target-group label for the ALBRequestCountPerTarget scaling metric."
  value       = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.envoy.arn_suffix}"
}
