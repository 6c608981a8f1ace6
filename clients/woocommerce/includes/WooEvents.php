<?php
/**
 * WooCommerce's hooks → events. At checkout (the customer's own request, classic or block
 * checkout) the customer's IP, user agent, click ids, cookies, consent and anonymous id are
 * saved on the order; the purchase, whatever request fires it (a payment gateway's callback,
 * an admin marking the order processing), is built from what was saved, exactly once.
 *
 * Hooks (WooCommerce 8): woocommerce_checkout_order_processed ($order_id, $posted_data,
 * $order), woocommerce_store_api_checkout_order_processed ($order),
 * woocommerce_payment_complete ($order_id), woocommerce_order_status_processing and
 * woocommerce_order_status_completed ($order_id, $order), woocommerce_order_refunded
 * ($order_id, $refund_id), woocommerce_add_to_cart ($cart_item_key, $product_id, $quantity,
 * $variation_id, ...).
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class WooEvents {
	/** Order meta: set when the purchase was queued, so later hooks do nothing. */
	public const PURCHASE_META = '_tagless_purchase_queued';

	public static function register(): void {
		add_action('woocommerce_checkout_order_processed', [self::class, 'checkout'], 10, 3);
		add_action('woocommerce_store_api_checkout_order_processed', [self::class, 'checkout'], 10, 1);
		add_action('woocommerce_payment_complete', [self::class, 'purchase'], 10, 1);
		add_action('woocommerce_order_status_processing', [self::class, 'purchase'], 10, 1);
		add_action('woocommerce_order_status_completed', [self::class, 'purchase'], 10, 1);
		add_action('woocommerce_order_refunded', [self::class, 'refund'], 10, 2);
		add_action('woocommerce_add_to_cart', [self::class, 'add_to_cart'], 10, 4);
	}

	/**
	 * The customer's checkout request: save who they are on the order, queue 'Checkout Started'.
	 *
	 * @param int|\WC_Order $order_or_id
	 */
	public static function checkout(mixed $order_or_id, mixed $posted = null, mixed $order = null): void {
		$order = $order instanceof \WC_Order ? $order : ($order_or_id instanceof \WC_Order ? $order_or_id : wc_get_order($order_or_id));
		if (!$order instanceof \WC_Order) {
			return;
		}
		$context = Visitor::context();
		unset($context['page']); // the checkout URL says nothing about the campaign
		$context['anonymousId'] = Visitor::anonymous_id();
		$order->update_meta_data(Messages::CONTEXT_META, wp_json_encode($context));
		$order->save();
		if (Settings::sends('checkout')) {
			$id = Messages::order_event_id($order->get_id(), 'checkout');
			Queue::add(Messages::order_event($order, 'Checkout Started', $id, $context));
		}
	}

	/** Payment completed, or an order marked processing/completed: 'Order Completed', once per order. */
	public static function purchase(mixed $order_id): void {
		$order = wc_get_order($order_id);
		if (!$order instanceof \WC_Order || $order->get_meta(self::PURCHASE_META)) {
			return;
		}
		if (!Settings::sends('purchase')) {
			return;
		}
		$id = Messages::order_event_id($order->get_id(), 'purchase');
		Queue::add(Messages::order_event($order, 'Order Completed', $id, Messages::checkout_context($order)));
		$order->update_meta_data(self::PURCHASE_META, gmdate('c'));
		$order->save();
	}

	public static function refund(mixed $order_id, mixed $refund_id): void {
		$order = wc_get_order($order_id);
		$refund = wc_get_order($refund_id);
		if (!$order instanceof \WC_Order || !$refund instanceof \WC_Order_Refund || !Settings::sends('refund')) {
			return;
		}
		Queue::add(Messages::refund($order, $refund, Messages::checkout_context($order)));
	}

	public static function add_to_cart(mixed $key, mixed $product_id, mixed $quantity, mixed $variation_id = 0): void {
		if (!Settings::sends('add_to_cart')) {
			return;
		}
		$product = wc_get_product((int) ($variation_id ?: $product_id));
		if (!$product instanceof \WC_Product) {
			return;
		}
		Queue::add(Messages::product_event('Product Added', $product, max(1, (int) $quantity), Visitor::context(), Visitor::anonymous_id(), get_current_user_id()));
	}
}
