"""makemessages that also extracts `N_(...)`.

Messages stored now and translated later (docqa.notes) are marked with
`gettext_noop as N_`; xgettext does not know that alias, so without this they never
reach the catalogue and show in English in every language.
"""

from django.core.management.commands.makemessages import Command as MakeMessagesCommand


class Command(MakeMessagesCommand):
    xgettext_options = [*MakeMessagesCommand.xgettext_options, "--keyword=N_"]
