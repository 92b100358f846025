"""Evidence: Allure steps and attachments, the JSON summary."""
