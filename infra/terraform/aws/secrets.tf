# Secrets live in Secrets Manager and reach the tasks as environment variables that the config refers to (${NAME}).
# Terraform creates the OIDC secret empty; put its value in out of band, so it is never in state or in a file:
#   aws secretsmanager put-secret-value --secret-id <output oidc_web_secret_arn> --secret-string "$CLIENT_SECRET"
# The database password is generated and rotated by RDS itself (manage_master_user_password).

resource "aws_secretsmanager_secret" "oidc_web" {
  name                    = "${var.name}/oidc-web-client-secret"
  description             = "Client secret of the Portcullis web client at the IdP"
  recovery_window_in_days = 7
}
