<?php
/** Cart and refund events. */

declare(strict_types=1);

final class OrderEventsTest extends TaglessTestCase {
	/** Add to cart: the product and quantity, with the shopper's IP and anonymous id. */
	public function test_add_to_cart(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$_COOKIE['tagless_aid'] = '6f1c2a3e-1111-4222-8333-944445555666';
		do_action('woocommerce_add_to_cart', 'key', $mug->get_id(), 3, 0, [], []);
		[$added] = $this->queued_named('Product Added');
		$this->assertSame(3, $added['properties']['quantity']);
		$this->assertSame('MUG-1', $added['properties']['sku']);
		$this->assertSame('81.2.69.142', $added['context']['ip']);
		$this->assertSame('6f1c2a3e-1111-4222-8333-944445555666', $added['anonymousId']);
	}

	/** A refund: 'Order Refunded' with the refunded amount, the order's identity and a deterministic id; no IP of the admin's request. */
	public function test_refund(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$order = tagless_fake_order([$mug->get_id() => 2], ['email' => 'a@example.com'], 7);
		do_action('woocommerce_checkout_order_processed', $order->get_id(), [], $order);
		$_SERVER['REMOTE_ADDR'] = '198.51.100.7';
		$refund = tagless_fake_refund(wc_get_order($order->get_id()), '12.50', 'Broken in transit');
		[$message] = $this->queued_named('Order Refunded');
		$this->assertSame("wc_order_{$order->get_id()}_refund_{$refund->get_id()}", $message['messageId']);
		$this->assertSame(12.5, $message['properties']['total']);
		$this->assertSame('Broken in transit', $message['properties']['reason']);
		$this->assertSame(1, $message['properties']['products'][0]['quantity']);
		$this->assertSame('wp_user_7', $message['userId']);
		$this->assertSame('a@example.com', $message['context']['traits']['email']);
		$this->assertArrayNotHasKey('ip', $message['context']);
	}

	/** A theme's pixel snippet gets the same id as the purchase Tagless receives. */
	public function test_public_event_id_function_matches_the_purchase(): void {
		$mug = tagless_fake_product('Mug', '12.50', 'MUG-1');
		$order = tagless_fake_order([$mug->get_id() => 1], ['email' => 'a@example.com']);
		do_action('woocommerce_checkout_order_processed', $order->get_id(), [], $order);
		wc_get_order($order->get_id())->payment_complete();
		[$purchase] = $this->queued_named('Order Completed');
		$this->assertSame(tagless_event_id($order->get_id(), 'purchase'), $purchase['messageId']);
	}
}
