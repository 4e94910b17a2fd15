# Security groups: the load balancer, the broker tasks, the database, and one managed gate per target.

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Portcullis load balancer: HTTPS from allowed_cidrs"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS to the broker"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTP, answered only with a redirect to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_broker" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to the broker tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.broker.id
}

resource "aws_security_group" "broker" {
  name        = "${var.name}-broker"
  description = "Portcullis broker tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "broker_from_alb" {
  security_group_id            = aws_security_group.broker.id
  description                  = "HTTP from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "broker_https" {
  security_group_id = aws_security_group.broker.id
  description       = "HTTPS: the IdP, the EC2 and Secrets Manager APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "broker_db" {
  security_group_id            = aws_security_group.broker.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "Portcullis PostgreSQL: only from the broker tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_broker" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the broker tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.broker.id
}

# The gates. At rest they admit nothing: no ingress rule is declared here, so RDP (3389) is closed until the broker
# adds one tagged, single-source rule for a grant. Terraform does not manage ingress of these groups (no inline
# ingress blocks, no aws_vpc_security_group_ingress_rule), so it never removes or fights the broker's rules.
resource "aws_security_group" "gate" {
  for_each    = var.targets
  name        = "${var.name}-gate-${each.key}"
  description = "Portcullis gate for ${each.key}: closed at rest, opened per grant"
  vpc_id      = var.vpc_id
  tags        = merge(local.gate_tag, { "portcullis:target" = each.key })
}
