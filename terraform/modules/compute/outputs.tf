output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "envoy_service_name" {
  description = "Envoy ECS service."
  value       = aws_ecs_service.envoy.name
}

output "control_plane_service_name" {
  description = "Control plane ECS service."
  value       = aws_ecs_service.control_plane.name
}
