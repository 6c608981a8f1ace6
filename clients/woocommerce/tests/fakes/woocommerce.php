<?php
/**
 * Small fakes of the WooCommerce classes and functions the plugin uses, for the tests (the
 * real WooCommerce is not packaged by Debian). Orders and products are WordPress posts with
 * their data in post meta, as WooCommerce stores them without HPOS, so that an order made in
 * one PHP process (the checkout request) is read by another (the gateway's callback).
 *
 * Only what the plugin calls is here, with WooCommerce's names and return types.
 */

declare(strict_types=1);

abstract class Tagless_Fake_Post_Object {
	protected int $id;
	/** @var array<string, mixed> */
	private array $changes = [];

	public function __construct(int $id) {
		$this->id = $id;
	}

	public function get_id(): int {
		return $this->id;
	}

	protected function field(string $key): string {
		return (string) get_post_meta($this->id, $key, true);
	}

	public function get_meta(string $key, bool $single = true): mixed {
		return $this->changes[$key] ?? get_post_meta($this->id, $key, $single);
	}

	public function update_meta_data(string $key, mixed $value): void {
		$this->changes[$key] = $value;
	}

	public function save(): int {
		foreach ($this->changes as $key => $value) {
			update_post_meta($this->id, $key, wp_slash($value));
		}
		$this->changes = [];
		return $this->id;
	}
}

class WC_Product extends Tagless_Fake_Post_Object {
	public function get_name(): string {
		return get_the_title($this->id);
	}
	public function get_sku(): string {
		return $this->field('_sku');
	}
	public function get_price(): string {
		return $this->field('_price');
	}
	/** @return list<int> */
	public function get_category_ids(): array {
		return array_map('intval', wp_get_post_terms($this->id, 'product_cat', ['fields' => 'ids']) ?: []);
	}
}

class WC_Order_Item_Product {
	/** @param array<string, mixed> $data */
	public function __construct(private array $data) {
	}
	public function get_product_id(): int {
		return (int) $this->data['product_id'];
	}
	public function get_variation_id(): int {
		return (int) ($this->data['variation_id'] ?? 0);
	}
	public function get_name(): string {
		return (string) $this->data['name'];
	}
	public function get_quantity(): int {
		return (int) $this->data['quantity'];
	}
	public function get_total(): string {
		return (string) $this->data['total'];
	}
	public function get_product(): WC_Product|false {
		return wc_get_product($this->get_variation_id() ?: $this->get_product_id());
	}
}

abstract class WC_Abstract_Order extends Tagless_Fake_Post_Object {
	/** @return array<int, WC_Order_Item_Product> */
	public function get_items(): array {
		$items = json_decode($this->field('_fake_items'), true) ?: [];
		return array_map(static fn ($item) => new WC_Order_Item_Product($item), $items);
	}
	public function get_currency(): string {
		return $this->field('_order_currency');
	}
	public function get_total(): string {
		return $this->field('_order_total');
	}
}

class WC_Order extends WC_Abstract_Order {
	public function get_status(): string {
		return substr((string) get_post_status($this->id), 3);
	}
	public function get_customer_id(): int {
		return (int) $this->field('_customer_user');
	}
	public function get_total_tax(): string {
		return $this->field('_order_tax');
	}
	public function get_shipping_total(): string {
		return $this->field('_order_shipping');
	}
	public function get_discount_total(): string {
		return $this->field('_cart_discount');
	}
	/** @return list<string> */
	public function get_coupon_codes(): array {
		return array_values(array_filter(explode(',', $this->field('_fake_coupons'))));
	}
	public function __call(string $name, array $args): string {
		if (preg_match('/^get_(billing_[a-z0-9_]+)$/', $name, $m)) {
			return $this->field('_' . $m[1]);
		}
		throw new BadMethodCallException("fake WC_Order has no {$name}()");
	}
	/** Moves the order to a status and fires WooCommerce's status hooks (as WC_Order::status_transition does). */
	public function update_status(string $status): void {
		wp_update_post(['ID' => $this->id, 'post_status' => "wc-{$status}"]);
		do_action("woocommerce_order_status_{$status}", $this->id, $this);
	}
	/** Marks the order paid: status processing, then woocommerce_payment_complete (WC_Order::payment_complete). */
	public function payment_complete(): void {
		$this->update_status('processing');
		do_action('woocommerce_payment_complete', $this->id);
	}
}

class WC_Order_Refund extends WC_Abstract_Order {
	public function get_amount(): string {
		return $this->field('_refund_amount');
	}
	public function get_reason(): string {
		return $this->field('_refund_reason');
	}
}

function wc_get_order(mixed $id): WC_Order|WC_Order_Refund|false {
	$id = $id instanceof WC_Abstract_Order ? $id->get_id() : (int) $id;
	$type = get_post_type($id);
	return match ($type) {
		'shop_order' => new WC_Order($id),
		'shop_order_refund' => new WC_Order_Refund($id),
		default => false,
	};
}

function wc_get_product(mixed $id): WC_Product|false {
	return get_post_type((int) $id) === 'product' ? new WC_Product((int) $id) : false;
}

function get_woocommerce_currency(): string {
	return (string) get_option('woocommerce_currency', 'EUR');
}

function is_product(): bool {
	return is_singular('product');
}

add_action('init', static function (): void {
	register_post_type('product', ['public' => true]);
	register_taxonomy('product_cat', 'product');
	register_post_type('shop_order', ['public' => false]);
	register_post_type('shop_order_refund', ['public' => false]);
	foreach (['pending', 'processing', 'on-hold', 'completed', 'refunded'] as $status) {
		register_post_status("wc-{$status}");
	}
}, 0);

/** Test helper: a product post with a price and a SKU. */
function tagless_fake_product(string $name, string $price, string $sku, string $category = ''): WC_Product {
	$id = wp_insert_post(['post_type' => 'product', 'post_title' => $name, 'post_status' => 'publish']);
	update_post_meta($id, '_price', $price);
	update_post_meta($id, '_sku', $sku);
	if ($category !== '') {
		wp_set_object_terms($id, $category, 'product_cat');
	}
	return new WC_Product($id);
}

/**
 * Test helper: a pending order of these products (product => quantity) and billing fields
 * (email, phone, first_name, last_name, address_1, city, state, postcode, country).
 *
 * @param array<int, int> $lines product id => quantity
 * @param array<string, string> $billing
 */
function tagless_fake_order(array $lines, array $billing, int $customer = 0, string $currency = 'EUR'): WC_Order {
	$id = wp_insert_post(['post_type' => 'shop_order', 'post_status' => 'wc-pending', 'post_title' => 'Order']);
	$items = [];
	$total = 0.0;
	foreach ($lines as $product_id => $quantity) {
		$product = wc_get_product($product_id);
		$line_total = (float) $product->get_price() * $quantity;
		$total += $line_total;
		$items[] = ['product_id' => $product_id, 'name' => $product->get_name(), 'quantity' => $quantity, 'total' => (string) $line_total];
	}
	$shipping = 4.90;
	$meta = [
		'_fake_items' => wp_json_encode($items),
		'_order_currency' => $currency,
		'_order_total' => (string) ($total + $shipping),
		'_order_tax' => '0',
		'_order_shipping' => (string) $shipping,
		'_cart_discount' => '0',
		'_customer_user' => (string) $customer,
	];
	foreach ($billing as $key => $value) {
		$meta["_billing_{$key}"] = $value;
	}
	foreach ($meta as $key => $value) {
		update_post_meta($id, $key, wp_slash($value));
	}
	return new WC_Order($id);
}

/** Test helper: a refund of an order's first line (quantity one), firing woocommerce_order_refunded. */
function tagless_fake_refund(WC_Order $order, string $amount, string $reason): WC_Order_Refund {
	$id = wp_insert_post(['post_type' => 'shop_order_refund', 'post_status' => 'wc-completed', 'post_parent' => $order->get_id()]);
	$first = $order->get_items()[0];
	$items = [['product_id' => $first->get_product_id(), 'name' => $first->get_name(), 'quantity' => -1, 'total' => '-' . $amount]];
	update_post_meta($id, '_fake_items', wp_slash(wp_json_encode($items)));
	update_post_meta($id, '_refund_amount', $amount);
	update_post_meta($id, '_refund_reason', $reason);
	update_post_meta($id, '_order_currency', $order->get_currency());
	do_action('woocommerce_order_refunded', $order->get_id(), $id);
	return new WC_Order_Refund($id);
}
