"""Forms that validate what a browser (or a script) posts to the chat views."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# A primary key is a signed 64-bit integer: anything longer cannot name a row (and would
# overflow the database driver instead of just not matching).
MAX_ID = 2**63 - 1


class IdListField(forms.Field):
    """A list of row ids, in the order given, duplicates dropped."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": _("“%(value)s” is not a valid document id.")}

    def to_python(self, value) -> list[int]:
        ids: list[int] = []
        for item in value or []:
            text = str(item).strip()
            if not text.isdigit() or not 0 < int(text) <= MAX_ID:
                raise ValidationError(
                    self.error_messages["invalid"], code="invalid", params={"value": text[:30]}
                )
            if int(text) not in ids:
                ids.append(int(text))
        return ids


class ConversationNewForm(forms.Form):
    """The documents a new conversation is about (whose they are, and ready, the service checks)."""

    documents = IdListField(required=False)
