from django.conf import settings


def docqa(request):
    """What every page needs to know: whether answers come from the offline emulator."""
    return {"moonshot_offline": settings.MOONSHOT_OFFLINE}
