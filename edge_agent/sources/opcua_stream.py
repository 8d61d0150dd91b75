"""An OPC UA subscription that hands each publish response's data changes on as one list.

asyncua delivers every monitored item's change as its own event object, through an asyncio
queue (its iterator API: a put and a get per value) or a task per value (its handler API). At
10,000 changes a second that machinery alone cost more than the rest of the agent's work per
value. Here the publish response is read where asyncua receives it, in its publish loop: the
changed values go to `on_changes` as the list the response holds, status changes to `on_status`.
Neither may block or await; the agent's sink never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import Subscription

ChangesCallback = Callable[[list[ua.MonitoredItemNotification]], None]
StatusCallback = Callable[[ua.StatusCode], None]


class DirectSubscription(Subscription):
    def __init__(
        self,
        session: object,
        params: ua.CreateSubscriptionParameters,
        on_changes: ChangesCallback,
        on_status: StatusCallback,
    ) -> None:
        super().__init__(session, params)  # type: ignore[arg-type]  # a client's UaSession
        self._on_changes = on_changes
        self._on_status = on_status

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        # What asyncua's own callback records, for keep-alive checks and republishing.
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData is None:
            return
        self.last_sequence_number = int(message.SequenceNumber)
        for notification in message.NotificationData:
            if isinstance(notification, ua.DataChangeNotification):
                self._on_changes(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._on_status(notification.Status)


async def create_subscription(
    client: Client,
    params: ua.CreateSubscriptionParameters,
    on_changes: ChangesCallback,
    on_status: StatusCallback,
) -> DirectSubscription:
    """Create it on the server as `Client.create_subscription` does, taking the server's
    revised publishing interval and keep-alive count."""
    subscription = DirectSubscription(client.uaclient.session, params, on_changes, on_status)
    results = await subscription.init()
    revised = client.get_subscription_revised_params(params, results)
    if revised is not None:
        await subscription.update(revised)
    return subscription
