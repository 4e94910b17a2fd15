variable "region" {
  description = "AWS region of the broker and of the targets' security groups."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource, and the value of the gate tag on managed security groups."
  type        = string
  default     = "portcullis"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC of the broker, the database and the targets."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer (at least two zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the broker tasks and the database (at least two zones), with a route to the AWS APIs and the IdP."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for public_hostname, served by the load balancer."
  type        = string
}

variable "public_hostname" {
  description = "Host name people use for the broker (DNS points at the load balancer); becomes server.publicUrl."
  type        = string
}

variable "allowed_cidrs" {
  description = "Who may reach the broker's HTTPS listener. The broker's own checks still apply; narrow this where you can."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "image" {
  description = "Broker image (infra/docker/Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/portcullis:0.1.0."
  type        = string
}

variable "replicas" {
  description = "Broker tasks behind the load balancer."
  type        = number
  default     = 2
  validation {
    condition     = var.replicas >= 1
    error_message = "replicas must be at least 1."
  }
}

variable "task_cpu" {
  description = "Fargate CPU units per broker task."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory (MiB) per broker task."
  type        = number
  default     = 1024
}

variable "oidc_issuer" {
  description = "OpenID Connect issuer URL (https)."
  type        = string
}

variable "oidc_web_client_id" {
  description = "Client id of the confidential web client at the IdP."
  type        = string
}

variable "oidc_cli_client_id" {
  description = "Client id of the public CLI client (device authorization grant) at the IdP."
  type        = string
}

variable "oidc_groups_claim" {
  description = "Claim (or dotted path) that holds the user's groups."
  type        = string
  default     = "groups"
}

variable "oidc_mfa_amr" {
  description = "amr values that count as MFA."
  type        = list(string)
  default     = ["mfa", "otp", "hwk", "swk", "sc"]
}

variable "oidc_mfa_acr" {
  description = "acr values that count as MFA."
  type        = list(string)
  default     = []
}

variable "admin_groups" {
  description = "Groups that may see and close anyone's grant."
  type        = list(string)
  default     = ["portcullis-admins"]
}

variable "audit_reader_groups" {
  description = "Groups that may read the audit trail."
  type        = list(string)
  default     = ["auditors"]
}

variable "targets" {
  description = "RDP targets. Each gets its own managed security group (no two targets share a gate); attach it to the target's network interface."
  type = map(object({
    connect     = string
    description = optional(string)
    ports       = optional(list(number), [3389])
    tags        = optional(map(string), {})
  }))
  validation {
    condition     = alltrue([for id, _ in var.targets : can(regex("^[a-z0-9][a-z0-9-]{0,62}$", id))])
    error_message = "target ids are lower-case letters, digits and dashes."
  }
}

variable "gate_tag_key" {
  description = "Tag key that marks the security groups the broker may change (value: var.name)."
  type        = string
  default     = "portcullis:gate"
}

variable "sweep_schedule" {
  description = "When the tags-only safety sweep runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(1 minute)"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"
}

variable "db_allocated_storage" {
  description = "RDS storage in GiB."
  type        = number
  default     = 20
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery)."
  type        = number
  default     = 14
}

variable "db_multi_az" {
  description = "A standby database in a second zone."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch retention of the broker's JSON logs."
  type        = number
  default     = 90
}
