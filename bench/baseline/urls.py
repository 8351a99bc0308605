"""The tutorial chat serves no HTTP pages in the benchmark."""

urlpatterns: list = []
