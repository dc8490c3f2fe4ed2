#pragma once

#include "models/core/model_options.h"
#include "models/core/name_table.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace vit::models {

// A config value as YAML spells it.
using FieldValue = std::variant<bool, int64_t, double, std::string, std::vector<double>, std::vector<std::string>>;

// What a configuration key is, whichever struct holds it: its name, help, accepted values and check.
struct FieldSpec {
  std::string key;  // below its section, nested keys dotted: "mixup.prob"
  std::string help;
  double min = 0.0;  // real numbers: the accepted closed range
  double max = 0.0;
  int64_t integer_min = 0;  // integers: the accepted closed range
  int64_t integer_max = 0;
  std::vector<std::string> choices;  // names: the accepted spellings
  bool interval = false;             // a [low, high] pair of numbers in [min, max]
  // Acts only while training (dropout rates): evaluating or exporting a checkpoint may set it
  // differently from the run that trained the weights, and it is no part of the model's description.
  bool training_only = false;
  // A check beyond type and range: what is wrong with a value, or "".
  std::function<std::string(const FieldValue&)> check;
};

// One configuration key of a struct, declared once: the config reader, the emitter of a run's
// config.yaml, `vit info`'s and export metadata's JSON and `vit config`'s reference all walk the
// same declarations, so a key cannot be read without being emitted, or documented without a help.
template <typename Struct>
struct Field : FieldSpec {
  std::function<FieldValue(const Struct&)> get;
  std::function<void(Struct&, const FieldValue&)> set;
  // Whether the key is in the configuration at all (an optional part that is absent is neither
  // read nor written); empty: always.
  std::function<bool(const Struct&)> present;
};

// `inner`'s fields as fields of `Outer`, under `prefix` ("train_transforms."), reached through
// `access` (Outer& -> Inner&) while `present` holds.
template <typename Outer, typename Inner, typename Access>
std::vector<Field<Outer>> nested_fields(const std::vector<Field<Inner>>& inner, const std::string& prefix,
                                        Access access, std::function<bool(const Outer&)> present = {}) {
  std::vector<Field<Outer>> outer;
  for (const auto& field : inner) {
    Field<Outer> lifted;
    static_cast<FieldSpec&>(lifted) = field;
    lifted.key = prefix + field.key;
    lifted.get = [get = field.get, access](const Outer& o) { return get(access(const_cast<Outer&>(o))); };
    lifted.set = [set = field.set, access](Outer& o, const FieldValue& value) { set(access(o), value); };
    if (present || field.present) {
      lifted.present = [inner_present = field.present, access, present](const Outer& o) {
        if (present && !present(o)) return false;
        return !inner_present || inner_present(access(const_cast<Outer&>(o)));
      };
    }
    outer.push_back(std::move(lifted));
  }
  return outer;
}

// Declares the fields of `Struct` in the order configs list them. Each field is reached through
// an accessor `T& (Struct&)`; member pointers of Struct need none.
template <typename Struct>
class FieldList {
 public:
  template <typename Access>
  FieldList& integer(std::string key, Access access, int64_t min, int64_t max, std::string help) {
    auto& field = add<int64_t>(std::move(key), std::move(help), access);
    field.integer_min = min;
    field.integer_max = max;
    return *this;
  }
  template <typename Access>
  FieldList& real(std::string key, Access access, double min, double max, std::string help) {
    auto& field = add<double>(std::move(key), std::move(help), access);
    field.min = min;
    field.max = max;
    return *this;
  }
  template <typename Access>
  FieldList& flag(std::string key, Access access, std::string help) {
    add<bool>(std::move(key), std::move(help), access);
    return *this;
  }
  template <typename Access>
  FieldList& text(std::string key, Access access, std::string help) {
    add<std::string>(std::move(key), std::move(help), access);
    return *this;
  }
  template <typename Access>
  FieldList& texts(std::string key, Access access, std::string help) {
    add<std::vector<std::string>>(std::move(key), std::move(help), access);
    return *this;
  }
  template <typename Access>
  FieldList& numbers(std::string key, Access access, std::string help) {
    add<std::vector<double>>(std::move(key), std::move(help), access);
    return *this;
  }
  // A list of whole numbers (std::vector<int64_t>), each in [min, max]; YAML spells it as numbers.
  template <typename Access>
  FieldList& integers(std::string key, Access access, int64_t min, int64_t max, std::string help) {
    Field<Struct> field;
    field.key = std::move(key);
    field.help = std::move(help);
    field.integer_min = min;
    field.integer_max = max;
    field.get = [access](const Struct& s) {
      const auto& list = reach(access, const_cast<Struct&>(s));
      return FieldValue(std::vector<double>(list.begin(), list.end()));
    };
    field.set = [access](Struct& s, const FieldValue& value) {
      auto& list = reach(access, s);
      list.clear();
      for (const double number : std::get<std::vector<double>>(value)) list.push_back(static_cast<int64_t>(number));
    };
    field.check = [min, max](const FieldValue& value) -> std::string {
      const auto& numbers = std::get<std::vector<double>>(value);
      if (numbers.empty()) return "must list at least one number";
      for (const double number : numbers) {
        if (number != std::floor(number) || number < static_cast<double>(min) || number > static_cast<double>(max)) {
          std::ostringstream text;
          text << "must list whole numbers in [" << min << ", " << max << "], got " << number;
          return text.str();
        }
      }
      return "";
    };
    fields_.push_back(std::move(field));
    return *this;
  }
  // Two members read and written as one [low, high] key.
  template <typename AccessLow, typename AccessHigh>
  FieldList& interval(std::string key, AccessLow low, AccessHigh high, double min, double max, std::string help) {
    Field<Struct> field;
    field.key = std::move(key);
    field.help = std::move(help);
    field.min = min;
    field.max = max;
    field.interval = true;
    field.get = [low, high](const Struct& s) {
      auto& mutable_s = const_cast<Struct&>(s);
      return FieldValue(std::vector<double>{reach(low, mutable_s), reach(high, mutable_s)});
    };
    field.set = [low, high](Struct& s, const FieldValue& value) {
      const auto& pair = std::get<std::vector<double>>(value);
      reach(low, s) = pair[0];
      reach(high, s) = pair[1];
    };
    fields_.push_back(std::move(field));
    return *this;
  }
  template <typename Enum, typename Access>
  FieldList& choice(std::string key, Access access, const NameTable<Enum>& names, std::string help) {
    Field<Struct> field;
    field.key = std::move(key);
    field.help = std::move(help);
    field.choices = names_in(names);
    field.get = [access, &names](const Struct& s) {
      return FieldValue(name_of(names, reach(access, const_cast<Struct&>(s))));
    };
    field.set = [access, &names](Struct& s, const FieldValue& value) {
      for (const auto& [name, entry] : names) {
        if (name == std::get<std::string>(value)) reach(access, s) = entry;
      }
    };
    fields_.push_back(std::move(field));
    return *this;
  }
  // A field stored otherwise than as one member (a pair of members, an unsigned number).
  FieldList& custom(Field<Struct> field) {
    fields_.push_back(std::move(field));
    return *this;
  }
  // Modifiers of the field declared last.
  FieldList& training_only() {
    fields_.back().training_only = true;
    return *this;
  }
  FieldList& check(std::function<std::string(const FieldValue&)> check) {
    fields_.back().check = std::move(check);
    return *this;
  }
  FieldList& present_when(std::function<bool(const Struct&)> present) {
    fields_.back().present = std::move(present);
    return *this;
  }
  std::vector<Field<Struct>> fields() const { return fields_; }

 private:
  template <typename Access>
  static decltype(auto) reach(const Access& access, Struct& s) {
    if constexpr (std::is_member_object_pointer_v<Access>) {
      return (s.*access);
    } else {
      return access(s);
    }
  }
  template <typename T, typename Access>
  Field<Struct>& add(std::string key, std::string help, Access access) {
    Field<Struct> field;
    field.key = std::move(key);
    field.help = std::move(help);
    field.get = [access](const Struct& s) { return FieldValue(T(reach(access, const_cast<Struct&>(s)))); };
    field.set = [access](Struct& s, const FieldValue& value) { reach(access, s) = std::get<T>(value); };
    fields_.push_back(std::move(field));
    return fields_.back();
  }

  std::vector<Field<Struct>> fields_;
};

// An architecture's fields, over the options it keeps in a ModelOptions.
using OptionField = Field<ModelOptions>;

// The accessor of a member of the architecture's own options struct inside ModelOptions.
template <typename Options, typename T>
auto option(T Options::*member) {
  return [member](ModelOptions& options) -> T& { return options.as<Options>().*member; };
}

}  // namespace vit::models
