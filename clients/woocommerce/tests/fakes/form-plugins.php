<?php
/**
 * Fakes of what the plugin touches in Gravity Forms (the GFForms class), WPForms (the
 * wpforms() function) and Contact Form 7 (WPCF7_VERSION, WPCF7_ContactForm::id(),
 * WPCF7_Submission::get_instance()->get_posted_data()), which mark them installed.
 */

declare(strict_types=1);

class GFForms {
}

function wpforms(): object {
	return new stdClass();
}

const WPCF7_VERSION = '5.8';

class WPCF7_ContactForm {
	public function __construct(private int $id) {
	}
	public function id(): int {
		return $this->id;
	}
}

class WPCF7_Submission {
	/** @var array<string, mixed> */
	public static array $posted = [];

	public static function get_instance(): self {
		return new self();
	}
	/** @return array<string, mixed> */
	public function get_posted_data(): array {
		return self::$posted;
	}
	public function get_posted_data_hash(): string {
		return md5((string) wp_json_encode(self::$posted));
	}
}
