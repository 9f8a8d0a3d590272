"""The embedded default's mailbox: what the hub e-mails lands in a folder."""

from email import message_from_bytes, policy

from carinho_pipelines.resources import EmailResource
from carinho_sandbox.mailbox import Mailbox
from tests.support import free_port


def test_welcome_email_lands_as_an_eml_file(tmp_path):
    box = Mailbox(tmp_path / "mailbox", port=free_port()).start()
    try:
        env = box.env()
        email = EmailResource(host=env["SMTP_HOST"], port=int(env["SMTP_PORT"]), starttls=False)
        email.send_welcome("bia@example.com", nome="Bia")
        [path] = box.messages()
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Subject"] == "Bem-vindo(a) ao Carinho com Você!"
        assert message["To"] == "bia@example.com"
    finally:
        box.stop()
