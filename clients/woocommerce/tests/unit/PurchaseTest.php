<?php
/** The purchase: checkout-time identity, sent exactly once whatever fires first. */

declare(strict_types=1);

final class PurchaseTest extends TaglessTestCase {
	private function checkout(): WC_Order {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1', 'Kitchen');
		$order = tagless_fake_order([$mug->get_id() => 2], [
			'email' => 'Jane.Doe@Example.com', 'phone' => '+44 20 7946 0000', 'first_name' => 'Jane',
			'last_name' => 'Doe', 'address_1' => '1 High Street', 'city' => 'London', 'state' => '',
			'postcode' => 'SW1A 1AA', 'country' => 'GB',
		]);
		$_SERVER['REMOTE_ADDR'] = '10.1.2.3'; // the store's load balancer, trusted
		$_SERVER['HTTP_X_FORWARDED_FOR'] = '81.2.69.142';
		$_COOKIE = ['_fbp' => 'fb.1.1700000000000.111', '__spdt' => 'spdt-abc', '_ga' => 'GA1.1.123.456',
			'tagless_ids' => '{"gclid":"Cj0KCQ-test"}', 'tagless_aid' => '6f1c2a3e-1111-4222-8333-944445555666'];
		do_action('woocommerce_checkout_order_processed', $order->get_id(), [], $order);
		return $order;
	}

	/** The gateway's callback from another IP and user agent: the purchase carries the checkout request's. */
	public function test_purchase_carries_the_checkout_time_ip_and_user_agent_not_the_gateways(): void {
		$order = $this->checkout();
		$_SERVER = ['REMOTE_ADDR' => '34.120.1.1', 'HTTP_USER_AGENT' => 'PayGateway/2.0'] + $_SERVER;
		unset($_SERVER['HTTP_X_FORWARDED_FOR']);
		$_COOKIE = [];
		wc_get_order($order->get_id())->payment_complete();

		[$purchase] = $this->queued_named('Order Completed');
		$this->assertSame('81.2.69.142', $purchase['context']['ip']);
		$this->assertSame('Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', $purchase['context']['userAgent']);
		$this->assertSame("wc_order_{$order->get_id()}_purchase", $purchase['messageId']);
		$this->assertEquals(['_fbp' => 'fb.1.1700000000000.111', '_ga' => 'GA1.1.123.456', '__spdt' => 'spdt-abc'], $purchase['context']['cookies']);
		$this->assertSame(['gclid' => 'Cj0KCQ-test'], $purchase['context']['click_ids']);
		$this->assertSame('6f1c2a3e-1111-4222-8333-944445555666', $purchase['anonymousId']);
		$this->assertSame('Jane.Doe@Example.com', $purchase['context']['traits']['email']);
		$this->assertSame('SW1A 1AA', $purchase['context']['traits']['address']['postalCode']);
		$this->assertSame(29.9, $purchase['properties']['total']);
		$this->assertSame([['product_id' => (string) $purchase['properties']['products'][0]['product_id'], 'name' => 'Mug', 'price' => 12.5, 'quantity' => 2, 'sku' => 'MUG-1', 'category' => 'Kitchen']], $purchase['properties']['products']);
	}

	/** Payment complete (which moves the order to processing) then completed: one purchase. */
	public function test_purchase_is_queued_once_whatever_hooks_fire(): void {
		$order = $this->checkout();
		wc_get_order($order->get_id())->payment_complete();
		wc_get_order($order->get_id())->update_status('completed');
		do_action('woocommerce_payment_complete', $order->get_id());
		$this->assertCount(1, $this->queued_named('Order Completed'));
	}

	/** An offline gateway (bank transfer): the purchase is sent when the shop marks the order processing. */
	public function test_offline_order_marked_processing_sends_the_purchase(): void {
		$order = $this->checkout();
		$this->assertCount(0, $this->queued_named('Order Completed'));
		$_SERVER['REMOTE_ADDR'] = '198.51.100.7'; // the shop manager's browser
		wc_get_order($order->get_id())->update_status('processing');
		[$purchase] = $this->queued_named('Order Completed');
		$this->assertSame('81.2.69.142', $purchase['context']['ip']);
	}

	/** Checkout Started is queued in the customer's request, with the deterministic id. */
	public function test_checkout_started_is_queued_at_checkout(): void {
		$order = $this->checkout();
		[$checkout] = $this->queued_named('Checkout Started');
		$this->assertSame("wc_order_{$order->get_id()}_checkout", $checkout['messageId']);
		$this->assertSame('81.2.69.142', $checkout['context']['ip']);
	}

	/** The block checkout's Store API hook captures the same context. */
	public function test_block_checkout_hook_captures_the_customer(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$order = tagless_fake_order([$mug->get_id() => 1], ['email' => 'a@example.com']);
		do_action('woocommerce_store_api_checkout_order_processed', $order);
		$_SERVER['REMOTE_ADDR'] = '34.120.1.1';
		wc_get_order($order->get_id())->payment_complete();
		[$purchase] = $this->queued_named('Order Completed');
		$this->assertSame('81.2.69.142', $purchase['context']['ip']);
	}
}
