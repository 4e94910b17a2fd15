output "url" {
  description = "Where people sign in (point public_hostname's DNS at load_balancer_dns_name)."
  value       = "https://${var.public_hostname}"
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer, for a CNAME or alias record of public_hostname."
  value       = aws_lb.this.dns_name
}

output "gate_security_group_ids" {
  description = "The managed security group of each target: attach it to the target's network interface (beside its own groups)."
  value       = { for id, g in aws_security_group.gate : id => g.id }
}

output "oidc_web_secret_arn" {
  description = "Put the web client's secret here (aws secretsmanager put-secret-value) before the first start."
  value       = aws_secretsmanager_secret.oidc_web.arn
}

output "cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "migrate_task_definition" {
  description = "Run once per upgrade before the service changes image: aws ecs run-task --task-definition <this>."
  value       = aws_ecs_task_definition.migrate.arn
}

output "broker_security_group_id" {
  description = "For the network configuration of a migrate run-task."
  value       = aws_security_group.broker.id
}

output "database_endpoint" {
  value = aws_db_instance.this.endpoint
}

output "log_group" {
  description = "The broker's and the sweep's JSON logs."
  value       = aws_cloudwatch_log_group.this.name
}
