"""Web (template) routes of this app."""

urlpatterns: list = []
