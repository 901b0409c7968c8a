// Texts of the SMS fallback (js/sms.js) in Russian, Kazakh and English;
// js/i18n.js adds them to its STRINGS.
export const SMS_STRINGS = {
  ru: {
    sms_title: "Нет интернета: отправьте тревогу по SMS",
    sms_hint: "Откроется приложение сообщений с готовым текстом: нажмите «Отправить». Это одно обычное SMS. Ответ придёт с номером дела.",
    sms_send: "Отправить по SMS",
    sms_opened: "Если SMS отправлено, ждите ответ с номером дела. Запись всё равно уйдёт на сервер, когда появится интернет.",
  },
  kk: {
    sms_title: "Интернет жоқ: дабылды SMS арқылы жіберіңіз",
    sms_hint: "Хабарлама қолданбасы дайын мәтінмен ашылады: «Жіберу» түймесін басыңыз. Бұл бір қарапайым SMS. Жауапта іс нөмірі келеді.",
    sms_send: "SMS арқылы жіберу",
    sms_opened: "SMS жіберілсе, іс нөмірі бар жауапты күтіңіз. Интернет пайда болғанда жазба серверге бәрібір жіберіледі.",
  },
  en: {
    sms_title: "No internet: send the alarm by SMS",
    sms_hint: "Your messaging app opens with the text ready: press Send. It is one ordinary SMS. The reply brings the case number.",
    sms_send: "Send by SMS",
    sms_opened: "If the SMS went, wait for the reply with the case number. The record still goes to the server once there is internet.",
  },
};
