<?php
/**
 * Segment-spec messages for the store's events, built from WooCommerce objects and the
 * context captured at the customer's own request. Pure: nothing here reads the request.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Messages {
	/** Order meta holding the checkout-time context (IP, user agent, cookies, click ids, consent, anonymous id). */
	public const CONTEXT_META = '_tagless_context';

	/** The deterministic event id of an order's event: `wc_order_<id>_<event>`. */
	public static function order_event_id(int $order_id, string $event): string {
		return "wc_order_{$order_id}_{$event}";
	}

	/**
	 * The context saved on the order at checkout (what the customer's request said).
	 *
	 * @return array<string, mixed>
	 */
	public static function checkout_context(\WC_Order $order): array {
		$saved = json_decode((string) $order->get_meta(self::CONTEXT_META), true);
		return is_array($saved) ? $saved : [];
	}

	/**
	 * A track message about an order ('Order Completed', 'Checkout Started'), with the
	 * checkout-time context, the billing identity as traits and the order's products.
	 *
	 * @param array<string, mixed> $context the checkout-time context
	 * @return array<string, mixed>
	 */
	public static function order_event(\WC_Order $order, string $event, string $message_id, array $context, ?int $time = null): array {
		$anonymous = (string) ($context['anonymousId'] ?? '');
		unset($context['anonymousId']);
		$context['traits'] = self::traits($order);
		$props = [
			'order_id' => (string) $order->get_id(),
			'total'    => self::money($order->get_total()),
			'currency' => $order->get_currency(),
			'tax'      => self::money($order->get_total_tax()),
			'shipping' => self::money($order->get_shipping_total()),
			'discount' => self::money($order->get_discount_total()),
			'products' => self::order_products($order),
		];
		if ($coupons = $order->get_coupon_codes()) {
			$props['coupon'] = implode(',', $coupons);
		}
		return self::track($event, $message_id, $props, $context, self::user_id($order->get_customer_id()), $anonymous ?: "wc_order_{$order->get_id()}", $time);
	}

	/**
	 * 'Order Refunded': the refunded amount and lines.
	 *
	 * @param array<string, mixed> $context
	 * @return array<string, mixed>
	 */
	public static function refund(\WC_Order $order, \WC_Order_Refund $refund, array $context): array {
		$anonymous = (string) ($context['anonymousId'] ?? '');
		unset($context['anonymousId'], $context['ip'], $context['userAgent'], $context['page']);
		$context['traits'] = self::traits($order);
		$props = [
			'order_id' => (string) $order->get_id(),
			'total'    => self::money($refund->get_amount()),
			'currency' => $order->get_currency(),
			'reason'   => $refund->get_reason() ?: null,
			'products' => self::order_products($refund),
		];
		$id = self::order_event_id($order->get_id(), 'refund_' . $refund->get_id());
		return self::track('Order Refunded', $id, array_filter($props, static fn ($v) => $v !== null), $context, self::user_id($order->get_customer_id()), $anonymous ?: "wc_order_{$order->get_id()}");
	}

	/**
	 * 'Product Viewed' / 'Product Added' of one product.
	 *
	 * @param array<string, mixed> $context
	 * @return array<string, mixed>
	 */
	public static function product_event(string $event, \WC_Product $product, int $quantity, array $context, string $anonymous_id, int $user_id): array {
		$props = self::product($product, $quantity) + ['currency' => get_woocommerce_currency()];
		return self::track($event, wp_generate_uuid4(), $props, $context, self::user_id($user_id), $anonymous_id);
	}

	/**
	 * A page call (Spotify "Visits").
	 *
	 * @param array<string, mixed> $context
	 * @return array<string, mixed>
	 */
	public static function page(array $context, string $anonymous_id, int $user_id): array {
		$message = [
			'type'        => 'page',
			'messageId'   => wp_generate_uuid4(),
			'anonymousId' => $anonymous_id,
			'timestamp'   => self::time(),
			'context'     => self::with_library($context),
			'properties'  => array_filter(['url' => $context['page']['url'] ?? null, 'referrer' => $context['page']['referrer'] ?? null]),
		];
		return self::with_user($message, self::user_id($user_id));
	}

	/**
	 * 'Lead Generated' from a form: the fields that look like identity become traits.
	 *
	 * @param array<string, mixed> $context
	 * @param array<string, string> $traits
	 * @return array<string, mixed>
	 */
	public static function lead(string $source, string $form_id, string $entry_id, array $traits, array $context, string $anonymous_id, int $user_id): array {
		$context['traits'] = $traits;
		$id = $entry_id !== '' ? "{$source}_{$form_id}_{$entry_id}_lead" : wp_generate_uuid4();
		$props = ['form_plugin' => $source, 'form_id' => $form_id];
		return self::track('Lead Generated', $id, $props, $context, self::user_id($user_id), $anonymous_id);
	}

	/** @return array<string, mixed> */
	public static function traits(\WC_Order $order): array {
		$address = array_filter([
			'street'     => trim($order->get_billing_address_1() . ' ' . $order->get_billing_address_2()),
			'city'       => $order->get_billing_city(),
			'state'      => $order->get_billing_state(),
			'postalCode' => $order->get_billing_postcode(),
			'country'    => $order->get_billing_country(),
		]);
		return array_filter([
			'email'     => $order->get_billing_email(),
			'phone'     => $order->get_billing_phone(),
			'firstName' => $order->get_billing_first_name(),
			'lastName'  => $order->get_billing_last_name(),
			'address'   => $address,
		]);
	}

	/**
	 * @param array<string, mixed> $props
	 * @param array<string, mixed> $context
	 * @return array<string, mixed>
	 */
	private static function track(string $event, string $message_id, array $props, array $context, ?string $user_id, string $anonymous_id, ?int $time = null): array {
		$message = [
			'type'        => 'track',
			'event'       => $event,
			'messageId'   => $message_id,
			'anonymousId' => $anonymous_id,
			'timestamp'   => self::time($time),
			'context'     => self::with_library($context),
			'properties'  => $props,
		];
		return self::with_user($message, $user_id);
	}

	/** @return list<array<string, mixed>> */
	private static function order_products(\WC_Order|\WC_Order_Refund $order): array {
		$lines = [];
		foreach ($order->get_items() as $item) {
			$quantity = abs((int) $item->get_quantity());
			$product = $item->get_product();
			$line = [
				'product_id' => (string) ($item->get_variation_id() ?: $item->get_product_id()),
				'name'       => $item->get_name(),
				'price'      => $quantity ? self::money(abs((float) $item->get_total()) / $quantity) : 0.0,
				'quantity'   => $quantity,
			];
			if ($product instanceof \WC_Product) {
				$line += array_filter(['sku' => $product->get_sku(), 'category' => self::category($product)]);
			}
			$lines[] = $line;
		}
		return $lines;
	}

	/** @return array<string, mixed> */
	private static function product(\WC_Product $product, int $quantity): array {
		return array_filter([
			'product_id' => (string) $product->get_id(),
			'sku'        => $product->get_sku(),
			'name'       => $product->get_name(),
			'price'      => self::money($product->get_price()),
			'quantity'   => $quantity,
			'category'   => self::category($product),
		], static fn ($v) => $v !== '' && $v !== null);
	}

	private static function category(\WC_Product $product): ?string {
		$ids = $product->get_category_ids();
		if (!$ids) {
			return null;
		}
		$term = get_term((int) $ids[0], 'product_cat');
		return $term instanceof \WP_Term ? $term->name : null;
	}

	/** @param array<string, mixed> $context @return array<string, mixed> */
	private static function with_library(array $context): array {
		return $context + ['library' => ['name' => 'tagless-woocommerce', 'version' => TAGLESS_VERSION]];
	}

	/** @param array<string, mixed> $message @return array<string, mixed> */
	private static function with_user(array $message, ?string $user_id): array {
		if ($user_id !== null) {
			$message['userId'] = $user_id;
		}
		return $message;
	}

	private static function user_id(int $id): ?string {
		return $id > 0 ? "wp_user_{$id}" : null;
	}

	private static function money(mixed $amount): float {
		return round((float) $amount, 2);
	}

	private static function time(?int $time = null): string {
		return gmdate('Y-m-d\TH:i:s\Z', $time ?? time());
	}
}
