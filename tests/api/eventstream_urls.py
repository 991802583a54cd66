"""The portal's URLs plus django-eventstream's own view, to test that it obeys the channel manager."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django_eventstream.views import events

from genhrl_site.urls import urlpatterns as site_patterns

# Exempt from the login redirect, so the channel manager's answer is what the test sees.
urlpatterns = [path("events/", login_not_required(events)), *site_patterns]
