"""The conversation admin: read-only, and it opens for anyone allowed to view it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("superuser", [False, True])
def test_a_viewer_of_conversations_and_messages_can_open_one(client, make_user, superuser):
    owner = make_user("alice")
    conversation = factories.conversation_create(owner=owner)
    factories.exchange_create(conversation=conversation, question="Q?", content="A.")
    viewer = make_user("viewer", is_staff=True, is_superuser=superuser)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_conversation", "view_message", "view_conversationdocument"]
        )
    )
    client.force_login(viewer)
    response = client.get(reverse("admin:chat_conversation_change", args=[conversation.pk]))
    assert response.status_code == 200
    assert "A." in response.content.decode()
