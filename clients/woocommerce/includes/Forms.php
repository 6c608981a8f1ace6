<?php
/**
 * Form submissions → 'Lead Generated', for the form plugins that are installed: Gravity Forms
 * (gform_after_submission: $entry, $form), WPForms (wpforms_process_complete: $fields,
 * $entry, $form_data, $entry_id) and Contact Form 7 (wpcf7_mail_sent: $contact_form, posted
 * data from WPCF7_Submission). Fields that look like an email, a phone or a name become
 * traits; nothing else of the form is sent.
 *
 * @package Tagless
 */

declare(strict_types=1);

namespace Tagless;

final class Forms {
	/** Hooks into each form plugin that is installed (run on plugins_loaded, when they are). */
	public static function register(): void {
		if (class_exists('GFForms') || class_exists('GFAPI')) {
			add_action('gform_after_submission', [self::class, 'gravity_forms'], 10, 2);
		}
		if (function_exists('wpforms')) {
			add_action('wpforms_process_complete', [self::class, 'wpforms'], 10, 4);
		}
		if (defined('WPCF7_VERSION')) {
			add_action('wpcf7_mail_sent', [self::class, 'contact_form_7'], 10, 1);
		}
	}

	/** @param array<string|int, mixed> $entry @param array<string, mixed> $form */
	public static function gravity_forms(mixed $entry, mixed $form): void {
		if (!is_array($entry) || !is_array($form)) {
			return;
		}
		$fields = [];
		foreach ((array) ($form['fields'] ?? []) as $field) {
			$id = is_object($field) ? ($field->id ?? null) : ($field['id'] ?? null);
			$type = is_object($field) ? ($field->type ?? '') : ($field['type'] ?? '');
			$label = is_object($field) ? ($field->label ?? '') : ($field['label'] ?? '');
			if ($type === 'name') {
				$fields['first_name'] = (string) ($entry["{$id}.3"] ?? '');
				$fields['last_name'] = (string) ($entry["{$id}.6"] ?? '');
			} elseif ($id !== null && isset($entry[(string) $id])) {
				$fields[$type . ' ' . $label] = (string) $entry[(string) $id];
			}
		}
		self::lead('gravity_forms', (string) ($form['id'] ?? ''), (string) ($entry['id'] ?? ''), $fields);
	}

	/** @param array<int|string, mixed> $fields @param array<string, mixed> $form_data */
	public static function wpforms(mixed $fields, mixed $entry, mixed $form_data, mixed $entry_id = 0): void {
		if (!is_array($fields) || !is_array($form_data)) {
			return;
		}
		$named = [];
		foreach ($fields as $field) {
			if (!is_array($field)) {
				continue;
			}
			$type = (string) ($field['type'] ?? '');
			if ($type === 'name') {
				$named['first_name'] = (string) ($field['first'] ?? '');
				$named['last_name'] = (string) ($field['last'] ?? '');
				if ($named['first_name'] === '' && $named['last_name'] === '') {
					$named['name'] = (string) ($field['value'] ?? '');
				}
			} else {
				$named[$type . ' ' . ($field['name'] ?? '')] = (string) ($field['value'] ?? '');
			}
		}
		self::lead('wpforms', (string) ($form_data['id'] ?? ''), (string) ($entry_id ?: ''), $named);
	}

	public static function contact_form_7(mixed $contact_form): void {
		if (!is_object($contact_form) || !class_exists('WPCF7_Submission')) {
			return;
		}
		$submission = \WPCF7_Submission::get_instance();
		$posted = $submission ? (array) $submission->get_posted_data() : [];
		$fields = [];
		foreach ($posted as $key => $value) {
			$fields[(string) $key] = is_array($value) ? implode(' ', array_map('strval', $value)) : (string) $value;
		}
		// CF7 keeps no entry: the submission's own hash, when there, still makes a stable id.
		$entry = $submission && method_exists($submission, 'get_posted_data_hash') ? (string) $submission->get_posted_data_hash() : '';
		self::lead('contact_form_7', (string) $contact_form->id(), $entry, $fields);
	}

	/**
	 * The traits found among a form's fields (name or label => value).
	 *
	 * @param array<string, string> $fields
	 * @return array<string, string>
	 */
	public static function traits(array $fields): array {
		$traits = [];
		foreach ($fields as $name => $value) {
			$value = trim($value);
			$key = strtolower($name);
			if ($value === '') {
				continue;
			}
			if (!isset($traits['email']) && (str_contains($key, 'mail')) && is_email($value)) {
				$traits['email'] = $value;
			} elseif (!isset($traits['phone']) && preg_match('/phone|tel|mobile/', $key) && preg_match('/^\+?[0-9 ().\/-]{6,25}$/', $value)) {
				$traits['phone'] = $value;
			} elseif (!isset($traits['firstName']) && preg_match('/^first[ _-]?name$|\bfirst\b/', $key)) {
				$traits['firstName'] = $value;
			} elseif (!isset($traits['lastName']) && preg_match('/^last[ _-]?name$|\blast\b|surname/', $key)) {
				$traits['lastName'] = $value;
			} elseif (!isset($traits['firstName']) && preg_match('/(^|[ _-])name$/', $key)) {
				$parts = preg_split('/\s+/', $value, 2) ?: [];
				$traits['firstName'] = $parts[0];
				if (isset($parts[1])) {
					$traits['lastName'] ??= $parts[1];
				}
			}
		}
		return $traits;
	}

	/** @param array<string, string> $fields */
	private static function lead(string $source, string $form_id, string $entry_id, array $fields): void {
		if (!Settings::sends('lead')) {
			return;
		}
		Queue::add(Messages::lead($source, $form_id, $entry_id, self::traits($fields), Visitor::context(), Visitor::anonymous_id(), get_current_user_id()));
	}
}
