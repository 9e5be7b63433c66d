"""Notifications: channel settings, the senders (email over SMTP, a Twilio-compatible SMS gateway,
Slack incoming webhooks), the delivery of one outbox event on one channel
(``pulse.notifications.delivery``) and the in-app stream every API process serves
(``pulse.notifications.stream``)."""
